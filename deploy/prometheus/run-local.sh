#!/usr/bin/env bash
# Run Prometheus from Debian's `prometheus` package on this machine, scraping Escalator's
# processes and loading deploy/prometheus/alerts.yml. Runs in the foreground; Ctrl-C stops it.
#
#   deploy/prometheus/run-local.sh            # write the configuration, then run Prometheus
#   deploy/prometheus/run-local.sh --config   # only write the configuration and print its path
#
# Targets (comma-separated host:port lists) and options, from the environment:
#   ESCALATOR_WORKER_TARGETS      default 127.0.0.1:6066  (escalator worker, /metrics)
#   ESCALATOR_INGRESS_TARGETS     default 127.0.0.1:8080  (escalator connect http)
#   ESCALATOR_PROJECTION_TARGETS  default 127.0.0.1:9464  (escalator projection)
#   ESCALATOR_SMTP_TARGETS        default none (escalator connect smtp, e.g. 127.0.0.1:9466)
#   ESCALATOR_IMAP_TARGETS        default none (escalator connect imap, e.g. 127.0.0.1:9467)
#   ESCALATOR_REPLIES_TARGETS     default none (escalator connect replies, e.g. 127.0.0.1:9465)
#   ESCALATOR_DESK_TARGETS        default none (escalator desk, e.g. 127.0.0.1:8090)
#   PROMETHEUS_PORT               default 9090 (listens on 127.0.0.1 only)
#   PROMETHEUS_DIR                default var/prometheus (configuration and TSDB)
#   SCRAPE_INTERVAL               default 5s
# Install Prometheus with: apt-get install prometheus (Debian), which also brings promtool.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORKERS="${ESCALATOR_WORKER_TARGETS:-127.0.0.1:6066}"
INGRESS="${ESCALATOR_INGRESS_TARGETS:-127.0.0.1:8080}"
PROJECTION="${ESCALATOR_PROJECTION_TARGETS:-127.0.0.1:9464}"
SMTP="${ESCALATOR_SMTP_TARGETS:-}"
IMAP="${ESCALATOR_IMAP_TARGETS:-}"
REPLIES="${ESCALATOR_REPLIES_TARGETS:-}"
DESK="${ESCALATOR_DESK_TARGETS:-}"
PORT="${PROMETHEUS_PORT:-9090}"
DIR="${PROMETHEUS_DIR:-$REPO/var/prometheus}"
INTERVAL="${SCRAPE_INTERVAL:-5s}"

targets() {  # "a:1,b:2" -> '"a:1", "b:2"'
    local list="" target
    IFS=',' read -ra items <<<"$1"
    for target in "${items[@]}"; do
        list+="${list:+, }\"${target}\""
    done
    printf '%s' "$list"
}

mkdir -p "$DIR/data"
CONFIG="$DIR/prometheus.yml"
cat >"$CONFIG" <<YAML
# Written by deploy/prometheus/run-local.sh; edit the script, not this file.
global:
  scrape_interval: ${INTERVAL}
  evaluation_interval: ${INTERVAL}
rule_files:
  - ${HERE}/alerts.yml
scrape_configs:
  - job_name: escalator-worker
    static_configs:
      - targets: [$(targets "$WORKERS")]
  - job_name: escalator-ingress
    static_configs:
      - targets: [$(targets "$INGRESS")]
  - job_name: escalator-projection
    static_configs:
      - targets: [$(targets "$PROJECTION")]
YAML
for job in smtp imap replies desk; do  # optional processes, only when their targets are given
    list="${job^^}"
    if [[ -n "${!list}" ]]; then
        printf '  - job_name: escalator-%s\n    static_configs:\n      - targets: [%s]\n' \
            "$job" "$(targets "${!list}")" >>"$CONFIG"
    fi
done

if ! command -v prometheus >/dev/null; then
    echo "prometheus is not installed: apt-get install prometheus" >&2
    exit 1
fi
promtool check config "$CONFIG" >&2
if [[ "${1:-}" == "--config" ]]; then
    echo "$CONFIG"
    exit 0
fi
echo "Prometheus on http://127.0.0.1:${PORT} scraping workers [${WORKERS}], ingress [${INGRESS}], projection [${PROJECTION}]" >&2
exec prometheus \
    --config.file="$CONFIG" \
    --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:${PORT}" \
    --web.enable-lifecycle \
    --enable-feature=exemplar-storage
