#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, broker+controller in one JVM) without Docker.
#
#   deploy/kafka/local-kafka.sh start             # fetch jars once, format fresh storage, start, wait
#   deploy/kafka/local-kafka.sh stop              # clean shutdown, then remove the broker's data
#   deploy/kafka/local-kafka.sh stop --keep-data  # clean shutdown; topics and offsets stay on disk
#   deploy/kafka/local-kafka.sh resume            # start again on the kept data (after stop --keep-data)
#   deploy/kafka/local-kafka.sh restart           # stop --keep-data, then resume (fault tests)
#   deploy/kafka/local-kafka.sh status
#
# `start`, `resume` and `restart` print KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port> on stdout once the
# broker is ready.
# Settings (environment):
#   KAFKA_PORT          client port (default 19092); the controller listens on KAFKA_PORT+1;
#                       `auto` picks free ports (what `make test` uses, so a busy 19092 never fails CI)
#   KAFKA_LOCAL_DIR     data, config, log and pid of this broker (default .local/kafka in the repo)
#   SEGMENTER_CACHE     where jars are cached (default ~/.cache/segmenter); reused by later starts
#   KAFKA_HEAP_OPTS     JVM heap (default -Xms256m -Xmx768m)
#   KAFKA_START_TIMEOUT seconds to wait for readiness (default 90)
#   KAFKA_SCRAM_USER, KAFKA_SCRAM_PASSWORD
#                       opt-in: also listen with SASL_PLAINTEXT + SCRAM-SHA-512 on KAFKA_PORT+2, with this
#                       one user created at format time (the PLAINTEXT listener stays as it is)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
scram_user=${KAFKA_SCRAM_USER:-}
scram_password=${KAFKA_SCRAM_PASSWORD:-}
state_dir=${KAFKA_LOCAL_DIR:-$repo/.local/kafka}
cache_dir=${SEGMENTER_CACHE:-$HOME/.cache/segmenter}
libs=$cache_dir/kafka-$kafka_version/libs
pid_file=$state_dir/kafka.pid
port_file=$state_dir/port
log_file=$state_dir/server.log

log() { echo "local-kafka: $*" >&2; }

# Three ports in a row that nothing listens on (client, controller, SCRAM), picked by the kernel.
free_port_run() {
  python3 - <<'PY'
import socket
for _ in range(100):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    try:
        for offset in (1, 2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", base + offset))
    except OSError:
        continue
    if base + 2 <= 65535:
        print(base)
        break
else:
    raise SystemExit("no run of three free ports found")
PY
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port=${KAFKA_PORT:-19092}
if [[ $port == auto ]]; then
  # A fresh start picks new ports; every other verb (and a start of a running broker) uses the
  # ports the broker was started on, kept in its state dir.
  if [[ ${1:-} == start ]] && ! { [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }; then
    port=$(free_port_run)
  elif [[ -f $port_file ]]; then
    port=$(cat "$port_file")
  else
    port=0  # nothing was started here: stop and status have nothing to find
  fi
fi
controller_port=$((port + 1))
scram_port=$((port + 2))

fetch_jars() {
  # The marker is written last, so a download cut short is redone instead of half-used.
  if [[ -f $libs/.complete ]]; then
    log "using cached jars in $libs"
    return
  fi
  log "resolving Apache Kafka $kafka_version jars from Maven Central into $libs"
  rm -rf "$libs" && mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  touch "$libs/.complete"
}

write_config() {
  mkdir -p "$state_dir/data"
  local listeners="PLAINTEXT://127.0.0.1:$port" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n $scram_user ]]; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$scram_port"
    protocols="$protocols,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat >"$state_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$state_dir/data
# One node: internal topics cannot be replicated.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=3
auto.create.topics.enable=true
# Tests create groups constantly; do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0
# Two cores.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
  if [[ -n $scram_user ]]; then
    # Brokers talk PLAINTEXT to each other; SCRAM only guards the client listener on KAFKA_PORT+2.
    cat >>"$state_dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  fi
  cat >"$state_dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log_file
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
EOF
}

is_running() {
  [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until grep -q "Kafka Server started" "$log_file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker exited during start; last lines of $log_file:"
      tail -n 30 "$log_file" >&2 || true
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "broker not ready after ${KAFKA_START_TIMEOUT:-90}s; see $log_file"
      exit 1
    fi
    # Polling a log file: there is no other signal to block on.
    sleep 0.2
  done
}

format_storage() {
  local cp="$libs/*" cluster_id scram=()
  # Kafka's own generator never returns an id starting with "-"; a hand-rolled base64 id does
  # one time in 64, and the format tool's argument parser then reads it as an option.
  cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 || true)
  if [[ ! $cluster_id =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ ]]; then
    log "could not generate a cluster id with kafka.tools.StorageTool random-uuid (got '$cluster_id')"
    exit 1
  fi
  if [[ -n $scram_user ]]; then
    [[ -n $scram_password ]] || { log "KAFKA_SCRAM_USER is set but KAFKA_SCRAM_PASSWORD is empty"; exit 2; }
    scram=(--add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]")
  fi
  java -cp "$cp" -Dlog4j2.configurationFile="$state_dir/log4j2.properties" \
    kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$state_dir/server.properties" \
    "${scram[@]}" >"$state_dir/format.log" 2>&1 \
    || { cat "$state_dir/format.log" >&2; exit 1; }
}

launch() {
  # A kept log already holds "Kafka Server started" from the previous run: start a fresh one.
  if [[ -f $log_file ]]; then mv "$log_file" "$log_file.previous"; fi
  # shellcheck disable=SC2086
  nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -XX:ActiveProcessorCount=2 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$state_dir/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$state_dir/server.properties" >"$state_dir/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pid_file"
  wait_ready "$pid"
  log "ready (pid $pid, data in $state_dir)"
  if [[ -n $scram_user ]]; then
    log "SCRAM-SHA-512 listener for user $scram_user on 127.0.0.1:$scram_port"
  fi
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
}

start() {
  if is_running; then
    log "already running (pid $(cat "$pid_file"))"
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
    return
  fi
  fetch_jars
  local taken
  for taken in "$port" "$controller_port"; do
    if port_in_use "$taken"; then
      log "127.0.0.1:$taken is already in use (another broker?); set KAFKA_PORT to another port or to auto"
      exit 1
    fi
  done
  rm -rf "$state_dir"
  write_config
  echo "$port" >"$port_file"
  format_storage
  launch
}

resume() {
  if is_running; then
    log "already running (pid $(cat "$pid_file"))"
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
    return
  fi
  [[ -f $state_dir/server.properties ]] || { log "no kept broker in $state_dir; use start"; exit 1; }
  launch
}

stop_process() {
  if is_running; then
    local pid deadline=$((SECONDS + 60))
    pid=$(cat "$pid_file")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        log "broker did not stop in 60s; killing"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
}

stop() {
  stop_process
  if [[ ${1:-} == --keep-data ]]; then
    log "data kept in $state_dir (resume starts the broker on it again)"
  else
    rm -rf "$state_dir"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop "${2:-}" ;;
  resume) resume ;;
  restart) stop --keep-data && resume ;;
  status) if is_running; then echo "running pid $(cat "$pid_file") on 127.0.0.1:$port"; else echo "not running"; exit 1; fi ;;
  fetch) fetch_jars ;;
  *) echo "usage: $0 start|stop [--keep-data]|resume|restart|status|fetch" >&2; exit 2 ;;
esac
