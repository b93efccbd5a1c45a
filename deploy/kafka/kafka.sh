#!/usr/bin/env bash
# Apache Kafka 4.1.1 for tests and dev: one KRaft node (broker + controller), jars from Maven
# Central, data in deploy/kafka/data/. Every sub-command is idempotent.
#
#   kafka.sh ensure-jars   download the broker and its runtime jars into deploy/kafka/lib/
#   kafka.sh start         format storage if needed, start the broker, wait until it answers
#   kafka.sh stop          stop it (TERM, wait, KILL); a no-op when nothing runs
#   kafka.sh status        exit 0 when a broker answers on the port, 1 otherwise
#
# Cluster profile (fault-injection runs, `make chaos`): N nodes on one machine, each a KRaft
# broker + controller of one N-voter quorum, replication factor 3 and min.insync.replicas 2:
#   kafka.sh cluster-start       format and start every node, wait until all answer
#   kafka.sh cluster-stop        stop every node
#   kafka.sh cluster-status      one line per node; exit 0 when all answer
#   kafka.sh cluster-bootstrap   print the bootstrap list (host:port,host:port,...)
#   kafka.sh node-start I | node-stop I | node-kill I | node-pid I
#                                start, stop (TERM), kill -9, or print the pid of node I (1..N)
# Cluster environment: KAFKA_CLUSTER_SIZE (3), KAFKA_CLUSTER_PORT (19092: node I listens on
# 19092+I-1, its controller on 19192+I-1), KAFKA_CLUSTER_DIR (deploy/kafka/data-cluster),
# KAFKA_CLUSTER_HEAP_OPTS (-Xms128m -Xmx512m).
#
# Environment (all optional):
#   KAFKA_HOST (localhost)  KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)
#   KAFKA_DATA_DIR (deploy/kafka/data)  KAFKA_HEAP_OPTS (-Xms256m -Xmx768m)
#   KAFKA_START_TIMEOUT (60 seconds)  KAFKA_PYTHON (a python with confluent-kafka)
#
# SASL profile: with KAFKA_SASL_PASSWORD set, the client listener is SASL_PLAINTEXT and accepts
# SCRAM-SHA-512 and PLAIN for the user KAFKA_SASL_USERNAME (default escalator), created at
# format time (kafka-storage format --add-scram); unauthenticated clients are refused. Give it
# its own port and data dir so it runs beside the plain broker, e.g.
#   KAFKA_PORT=9192 KAFKA_CONTROLLER_PORT=9193 KAFKA_DATA_DIR=deploy/kafka/data-sasl \
#   KAFKA_SASL_PASSWORD=escalator-secret deploy/kafka/kafka.sh start
# Least privilege: KAFKA_SASL_USERS="ingress=secret1,desk=secret2,..." creates more SCRAM users
# at format time, and KAFKA_ACLS=true turns on the ACL authorizer: KAFKA_SASL_USERNAME is then
# the only super user (it applies the ACLs: `escalator kafka acls --apply`), every other
# principal gets exactly what an ACL grants, and nothing without one.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LIB="$HERE/lib"
KAFKA_JAR="kafka_2.13-4.1.1.jar"

HOST="${KAFKA_HOST:-localhost}"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
DATA="${KAFKA_DATA_DIR:-$HERE/data}"
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
BOOTSTRAP="$HOST:$PORT"
SASL_USERNAME="${KAFKA_SASL_USERNAME:-escalator}"
SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-}"
SASL_USERS="${KAFKA_SASL_USERS:-}"
ACLS="${KAFKA_ACLS:-false}"
# Set per node by the cluster commands; a lone broker is node 1 of a quorum of itself.
NODE_ID="${KAFKA_NODE_ID:-1}"
CLUSTER_SIZE="${KAFKA_CLUSTER_SIZE:-3}"
CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-19092}"
CLUSTER_DIR="${KAFKA_CLUSTER_DIR:-$HERE/data-cluster}"
VOTERS="${KAFKA_QUORUM_VOTERS:-$NODE_ID@$HOST:$CONTROLLER_PORT}"
REPLICATION="${KAFKA_REPLICATION:-1}"
MIN_ISR=$(( REPLICATION > 1 ? REPLICATION - 1 : 1 ))
CLUSTER_ID_FILE="${KAFKA_CLUSTER_ID_FILE:-}"

PIDFILE="$DATA/kafka.pid"
LOGDIR="$DATA/logs"
LOGDATA="$DATA/kraft"
CONFIG="$DATA/server.properties"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

python_bin() {
    if [[ -n "${KAFKA_PYTHON:-}" ]]; then
        echo "$KAFKA_PYTHON"
    elif [[ -x "$REPO/.venv/bin/python" ]]; then
        echo "$REPO/.venv/bin/python"
    else
        echo python3
    fi
}

# ready SECONDS [PID]: wait up to SECONDS for a metadata answer; exit 2 if PID dies first.
ready() {
    local args=("$BOOTSTRAP" --wait "$1")
    [[ -n "${2:-}" ]] && args+=(--pid "$2")
    "$(python_bin)" "$HERE/broker_ready.py" "${args[@]}"
}

# The pid of our broker if it is running, else nothing.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if [[ -n "$pid" ]] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q "kafka.Kafka"; then
        echo "$pid"
    fi
}

ensure_jars() {
    local stamp="$LIB/.pom.sha256" want
    want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
    if [[ -f "$LIB/$KAFKA_JAR" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        return 0
    fi
    mkdir -p "$HERE/data"
    exec 8>"$HERE/data/.jars.lock"
    flock 8
    if [[ -f "$LIB/$KAFKA_JAR" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        return 0  # another process fetched them while we waited for the lock
    fi
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
    log "fetching Kafka jars from Maven Central into $LIB"
    local partial="$HERE/data/lib.partial"
    rm -rf "$partial"
    (cd "$HERE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$partial")
    [[ -f "$partial/$KAFKA_JAR" ]] || die "Maven did not produce $KAFKA_JAR"
    echo "$want" >"$partial/.pom.sha256"
    rm -rf "$LIB"
    mv "$partial" "$LIB"
    log "$(find "$LIB" -name '*.jar' | wc -l) jars in $LIB"
    exec 8>&-
}

# The client listener: PLAINTEXT, or SASL_PLAINTEXT (SCRAM-SHA-512 and PLAIN) in the SASL profile.
listener_config() {
    if [[ -z "$SASL_PASSWORD" ]]; then
        cat <<EOF
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
        return
    fi
    local user="$SASL_USERNAME" password="$SASL_PASSWORD"
    cat <<EOF
listeners=SASL_PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$password";
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$user" password="$password" user_$user="$password";
EOF
    if [[ "$ACLS" == "true" ]]; then
        # The controller listener is plaintext on loopback: its principal is ANONYMOUS.
        cat <<EOF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$user;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
EOF
    fi
}

write_config() {
    cat <<EOF
# Generated by deploy/kafka/kafka.sh; edit the script, not this file.
# SCRAM users made at format time (a change re-formats): $(printf %s "$SASL_USERS" | sha256sum | cut -c1-16)
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
$(listener_config)
log.dirs=$LOGDATA
# Suited to tests: fast group joins, topics appear on first use; one node unless a cluster.
num.partitions=4
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
offsets.topic.replication.factor=$REPLICATION
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$REPLICATION
share.coordinator.state.topic.min.isr=$MIN_ISR
default.replication.factor=$REPLICATION
min.insync.replicas=$MIN_ISR
num.network.threads=3
num.io.threads=4
log.cleaner.dedupe.buffer.size=33554432
EOF
}

# A cluster id is 16 random bytes in URL-safe base64 without padding (22 characters).
# One that starts with "-" would read as an option to kafka-storage: draw again.
new_cluster_id() {
    local id="-"
    while [[ "$id" == -* ]]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    echo "$id"
}

# Format the storage unless it was formatted for exactly this configuration.
format_storage() {
    local wanted
    wanted="$(write_config)"
    if [[ -f "$LOGDATA/meta.properties" && -f "$CONFIG" && "$(cat "$CONFIG")" == "$wanted" ]]; then
        return 0
    fi
    log "formatting KRaft storage in $LOGDATA"
    rm -rf "$LOGDATA"
    echo "$wanted" >"$CONFIG"
    local cluster_id
    if [[ -n "$CLUSTER_ID_FILE" ]]; then  # every node of a cluster formats with one id
        cluster_id="$(cat "$CLUSTER_ID_FILE")"
    else
        cluster_id="$(new_cluster_id)"
    fi
    local scram=()
    if [[ -n "$SASL_PASSWORD" ]]; then  # the SCRAM credential lives in the cluster metadata
        scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USERNAME,password=$SASL_PASSWORD]")
        local entry
        for entry in ${SASL_USERS//,/ }; do
            scram+=(--add-scram "SCRAM-SHA-512=[name=${entry%%=*},password=${entry#*=}]")
        done
    fi
    java -cp "$LIB/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" "${scram[@]}" \
        >"$LOGDIR/format.log" 2>&1 || { cat "$LOGDIR/format.log" >&2; die "format failed"; }
}

start() {
    ensure_jars
    mkdir -p "$DATA" "$LOGDIR"
    exec 9>"$DATA/.lock"
    flock 9
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        if ready "$START_TIMEOUT" "$pid"; then
            log "already running (pid $pid) on $BOOTSTRAP"
            return 0
        fi
        die "broker pid $pid runs but does not answer on $BOOTSTRAP; see $LOGDIR/server.log"
    fi
    if ready 1; then
        log "a broker already answers on $BOOTSTRAP (not started by this script); reusing it"
        return 0
    fi
    launch
    pid="$(cat "$PIDFILE")"
    local started=$SECONDS rc=0
    ready "$START_TIMEOUT" "$pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        if [[ $rc -eq 2 ]]; then
            log "Kafka exited during startup; log tail:"
        else
            log "Kafka did not answer on $BOOTSTRAP within ${START_TIMEOUT}s; log tail:"
        fi
        tail -n 40 "$LOGDIR/server.log" "$LOGDIR/stdout.log" >&2 2>/dev/null || true
        stop_broker
        exit 1
    fi
    log "Kafka is up on $BOOTSTRAP (pid $pid, $((SECONDS - started))s)"
}

# Format if needed and start the JVM in the background; the caller waits for it.
launch() {
    command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
    format_storage
    log "starting Kafka node $NODE_ID on $BOOTSTRAP (controller $HOST:$CONTROLLER_PORT, data $DATA)"
    # shellcheck disable=SC2086  # HEAP holds several JVM options
    setsid nohup java $HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$LOGDIR" \
        -cp "$LIB/*" kafka.Kafka "$CONFIG" >"$LOGDIR/stdout.log" 2>&1 </dev/null 9>&- &
    echo "$!" >"$PIDFILE"
}

stop_broker() {
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        [[ -n "$(running_pid)" ]] || break
        sleep 0.2
    done
    if [[ -n "$(running_pid)" ]]; then
        log "still running after 30s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$PIDFILE"
}

stop() {
    mkdir -p "$DATA"
    exec 9>"$DATA/.lock"
    flock 9
    stop_broker
}

status() {
    local pid
    pid="$(running_pid)"
    if ready 2; then
        echo "Kafka answers on $BOOTSTRAP${pid:+ (pid $pid)}"
        return 0
    fi
    echo "no Kafka answers on $BOOTSTRAP${pid:+ (pid $pid runs but does not answer)}"
    return 1
}

# ---- cluster profile: every node runs this script again with its own environment ----

cluster_voters() {
    local voters="" i
    for i in $(seq 1 "$CLUSTER_SIZE"); do
        voters+="${voters:+,}$i@$HOST:$((CLUSTER_PORT + 100 + i - 1))"
    done
    echo "$voters"
}

cluster_bootstrap() {
    local hosts="" i
    for i in $(seq 1 "$CLUSTER_SIZE"); do
        hosts+="${hosts:+,}$HOST:$((CLUSTER_PORT + i - 1))"
    done
    echo "$hosts"
}

# node I COMMAND: run one of this script's single-node commands as node I of the cluster.
node() {
    local i="$1" command="$2"
    [[ "$i" =~ ^[0-9]+$ && "$i" -ge 1 && "$i" -le "$CLUSTER_SIZE" ]] \
        || die "node must be 1..$CLUSTER_SIZE, not '$i'"
    mkdir -p "$CLUSTER_DIR"
    [[ -s "$CLUSTER_DIR/cluster.id" ]] || new_cluster_id >"$CLUSTER_DIR/cluster.id"
    KAFKA_NODE_ID="$i" KAFKA_PORT="$((CLUSTER_PORT + i - 1))" \
        KAFKA_CONTROLLER_PORT="$((CLUSTER_PORT + 100 + i - 1))" \
        KAFKA_DATA_DIR="$CLUSTER_DIR/node-$i" KAFKA_QUORUM_VOTERS="$(cluster_voters)" \
        KAFKA_REPLICATION="$(( CLUSTER_SIZE < 3 ? CLUSTER_SIZE : 3 ))" \
        KAFKA_CLUSTER_ID_FILE="$CLUSTER_DIR/cluster.id" \
        KAFKA_HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx512m}" \
        bash "$HERE/kafka.sh" "$command"
}

# A node's JVM starts in the background; it answers only once a quorum of voters runs,
# so `cluster-start` launches every node first and waits for them afterwards.
node_launch() {
    ensure_jars
    mkdir -p "$DATA" "$LOGDIR"
    exec 9>"$DATA/.lock"
    flock 9
    [[ -n "$(running_pid)" ]] && return 0
    launch
}

node_wait() {
    local pid
    pid="$(running_pid)"
    [[ -n "$pid" ]] || die "node $NODE_ID is not running"
    ready "$START_TIMEOUT" "$pid" || {
        tail -n 40 "$LOGDIR/server.log" >&2 2>/dev/null || true
        die "node $NODE_ID did not answer on $BOOTSTRAP within ${START_TIMEOUT}s"
    }
    log "node $NODE_ID is up on $BOOTSTRAP (pid $pid)"
}

node_kill() {
    local pid
    pid="$(running_pid)"
    [[ -n "$pid" ]] || { log "node $NODE_ID is not running"; return 0; }
    log "killing node $NODE_ID (pid $pid) with SIGKILL"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$PIDFILE"
}

cluster_start() {
    ensure_jars
    local i
    for i in $(seq 1 "$CLUSTER_SIZE"); do node "$i" node-launch; done
    for i in $(seq 1 "$CLUSTER_SIZE"); do node "$i" node-wait; done
    log "cluster of $CLUSTER_SIZE is up: $(cluster_bootstrap)"
}

# Stop every node at once: one by one, the last ones wait for a quorum that is gone.
cluster_stop() {
    local i
    for i in $(seq 1 "$CLUSTER_SIZE"); do node "$i" stop & done
    wait
}

cluster_status() {
    local i rc=0
    for i in $(seq 1 "$CLUSTER_SIZE"); do node "$i" status || rc=1; done
    return "$rc"
}

case "${1:-}" in
    ensure-jars) ensure_jars ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    node-launch) node_launch ;;
    node-wait) node_wait ;;
    node-kill-self) node_kill ;;
    node-pid-self) running_pid ;;
    cluster-start) cluster_start ;;
    cluster-stop) cluster_stop ;;
    cluster-status) cluster_status ;;
    cluster-bootstrap) cluster_bootstrap ;;
    node-start) node "${2:?node number}" node-launch && node "$2" node-wait ;;
    node-stop) node "${2:?node number}" stop ;;
    node-kill) node "${2:?node number}" node-kill-self ;;
    node-pid) node "${2:?node number}" node-pid-self ;;
    *) die "usage: $0 ensure-jars|start|stop|status|cluster-start|cluster-stop|cluster-status|cluster-bootstrap|node-start I|node-stop I|node-kill I|node-pid I" ;;
esac
