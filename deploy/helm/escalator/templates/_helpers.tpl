{{/* Name of the release's objects. */}}
{{- define "escalator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "escalator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "worker"). */}}
{{- define "escalator.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "escalator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "escalator.secretName" -}}
{{ include "escalator.fullname" . }}
{{- end -}}

{{/* Environment shared by every process: Kafka (with SASL/TLS), topics, rules, database. */}}
{{- define "escalator.env" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: ESCALATOR_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: ESCALATOR_KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: ESCALATOR_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: ESCALATOR_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if .Values.kafka.tls.caSecret }}
- name: ESCALATOR_KAFKA_SSL_CAFILE
  value: /etc/escalator/kafka-ca/{{ .Values.kafka.tls.caKey }}
{{- end }}
- name: ESCALATOR_RULES
  value: /etc/escalator/rules
- name: ESCALATOR_DATA_DIR
  value: /var/lib/escalator
- name: ESCALATOR_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if or .Values.database.url .Values.database.existingSecret }}
- name: ESCALATOR_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | default (include "escalator.secretName" .) }}
      key: {{ .Values.database.urlKey }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes shared by every process: rules, scratch space, the Kafka CA. */}}
{{- define "escalator.volumes" -}}
- name: rules
  configMap:
    name: {{ include "escalator.fullname" . }}-rules
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- end -}}

{{- define "escalator.volumeMounts" -}}
- name: rules
  mountPath: /etc/escalator/rules
  readOnly: true
- name: data
  mountPath: /var/lib/escalator
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/escalator/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* An exec probe that GETs a URL inside the container (the worker's web server binds 127.0.0.1). */}}
{{- define "escalator.execProbe" -}}
exec:
  command:
    - python
    - -c
    - "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)"
    - {{ . | quote }}
{{- end -}}

{{/* One process's Kafka principal: kafka.sasl.principals.<component> when set (least
privilege: docs/operations.md), else the shared kafka.sasl user. Called with
(dict "root" . "component" "worker"). */}}
{{- define "escalator.kafkaPrincipal" -}}
{{- $sasl := .root.Values.kafka.sasl }}
{{- if $sasl.mechanism }}
{{- $own := index ($sasl.principals | default dict) .component | default dict }}
- name: ESCALATOR_KAFKA_SASL_MECHANISM
  value: {{ $sasl.mechanism | quote }}
- name: ESCALATOR_KAFKA_SASL_USERNAME
  {{- if $own.username }}
  value: {{ $own.username | quote }}
  {{- else }}
  value: {{ required "kafka.sasl.username (or kafka.sasl.principals.<component>) is required with kafka.sasl.mechanism" $sasl.username | quote }}
  {{- end }}
- name: ESCALATOR_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $sasl.existingSecret | default (include "escalator.secretName" .root) }}
      key: {{ if $own.username }}{{ $sasl.passwordKey }}-{{ .component }}{{ else }}{{ $sasl.passwordKey }}{{ end }}
{{- end }}
{{- end -}}

{{/* The escalation links' settings, for the two processes that use them (worker, ingress). */}}
{{- define "escalator.escalateLinks" -}}
{{- with .Values.escalateLinks }}
{{- if .url }}
- name: ESCALATOR_ESCALATE_LINK_URL
  value: {{ .url | quote }}
- name: ESCALATOR_ESCALATE_LINK_LIFETIME
  value: {{ .lifetime | quote }}
- name: ESCALATOR_ESCALATE_LINK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | default (include "escalator.secretName" $) }}
      key: {{ .secretKey }}
{{- end }}
{{- end }}
{{- end -}}
