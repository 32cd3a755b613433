#!/usr/bin/env bash
# Install (from Maven Central) and run a single-node Apache Kafka (KRaft,
# combined broker+controller) on loopback for Weir's real-server tests.
#
# usage: kafka.sh start|stop|status|install
#        kafka.sh topics ARGS...              # TopicCommand against the broker
#        kafka.sh create-topic NAME [PARTITIONS]   (default 4, idempotent)
#        kafka.sh produce TOPIC                # lines on stdin -> TOPIC
#        kafka.sh consume TOPIC [MAX] [TIMEOUT_MS]  # from beginning, to stdout
#
# Environment (all optional):
#   KAFKA_VERSION          broker version from Maven Central  (4.1.2)
#   KAFKA_PORT             client (PLAINTEXT) port            (19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port              (19093)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness      (90)
#   KAFKA_JAVA             java binary for the broker         (java, needs 17+)
#   WEIR_SERVERS_DIR       install cache   ($HOME/.cache/weir/servers)
#   WEIR_SERVERS_RUN       runtime state   (/tmp/weir-servers)
# On success `start` prints the bootstrap address (127.0.0.1:PORT) on stdout.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
SCALA_VERSION="2.13"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
JAVA="${KAFKA_JAVA:-java}"
HOST=127.0.0.1
BOOTSTRAP="$HOST:$KAFKA_PORT"

SERVERS_DIR="${WEIR_SERVERS_DIR:-$HOME/.cache/weir/servers}"
HOME_DIR="$SERVERS_DIR/kafka-$KAFKA_VERSION"
LIBS="$HOME_DIR/libs"
PROBE_DIR="$HOME_DIR/probe"
INSTALLED_MARKER="$HOME_DIR/.installed"

RUN_ROOT="${WEIR_SERVERS_RUN:-/tmp/weir-servers}"
RUN_DIR="$RUN_ROOT/kafka"
PID_FILE="$RUN_ROOT/kafka.pid"   # outside RUN_DIR so a wiped RUN_DIR never loses it
LOG_FILE="$RUN_DIR/kafka.log"
LOCK_FILE="$RUN_ROOT/kafka.lock"

SCRIPT=kafka.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- install ---

write_pom() {
    cat >"$1/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.weir.tests</groupId>
  <artifactId>kafka-server-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker (kafka.Kafka) and kafka.tools.StorageTool -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <!-- TopicCommand, ConsoleProducer, ConsoleConsumer (Connect is not needed) -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>${KAFKA_VERSION}</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>jackson-jakarta-rs-json-provider</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- logging backend, as in the Kafka 4.x distribution (slf4j 1.7 -> log4j2) -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
EOF
}

# Readiness probe: describeCluster + listTopics through the AdminClient,
# retried until a deadline. Compiled once at install time.
write_probe() {
    cat >"$1/WeirKafkaProbe.java" <<'EOF'
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class WeirKafkaProbe {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.currentTimeMillis() + Long.parseLong(args[1]) * 1000L;
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        Exception last = null;
        try (Admin admin = Admin.create(p)) {
            while (System.currentTimeMillis() < deadline) {
                try {
                    int nodes = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).size();
                    String controller = String.valueOf(admin.describeCluster().controller().get(5, TimeUnit.SECONDS));
                    admin.listTopics().names().get(5, TimeUnit.SECONDS);
                    if (nodes > 0) {
                        System.out.println("ok nodes=" + nodes + " controller=" + controller);
                        return;
                    }
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(300);
            }
        }
        System.err.println("kafka probe: not ready: " + last);
        System.exit(1);
    }
}
EOF
}

installed() { [[ -f "$INSTALLED_MARKER" && -f "$PROBE_DIR/WeirKafkaProbe.class" ]]; }

install() {
    if installed; then return 0; fi
    command -v "$JAVA" >/dev/null || die "'$JAVA' not found (Kafka ${KAFKA_VERSION} needs Java 17+)"
    command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka jars from Maven Central)"
    command -v javac >/dev/null || die "javac not found (needed once to compile the readiness probe)"
    mkdir -p "$SERVERS_DIR"
    local t0=$SECONDS build
    build="$(mktemp -d "$SERVERS_DIR/.kafka-build.XXXXXX")"
    log "installing Kafka ${KAFKA_VERSION} (kafka_${SCALA_VERSION} + runtime deps) from Maven Central into $HOME_DIR"
    write_pom "$build"
    if ! (cd "$build" && mvn -q -B -ntp dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$build/libs" >"$build/mvn.log" 2>&1); then
        tail -n 40 "$build/mvn.log" >&2 || true
        rm -rf "$build"
        die "Maven could not fetch org.apache.kafka:kafka_${SCALA_VERSION}:${KAFKA_VERSION} and its dependencies"
    fi
    [[ -f "$build/libs/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" ]] \
        || { rm -rf "$build"; die "kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar missing after Maven run"; }
    mkdir -p "$build/probe"
    write_probe "$build/probe"
    javac -nowarn -d "$build/probe" -cp "$build/libs/*" "$build/probe/WeirKafkaProbe.java" \
        || { rm -rf "$build"; die "could not compile the readiness probe"; }
    rm -rf "$HOME_DIR"
    mkdir -p "$HOME_DIR"
    mv "$build/libs" "$LIBS"
    mv "$build/probe" "$PROBE_DIR"
    rm -rf "$build"
    touch "$INSTALLED_MARKER"
    log "installed Kafka ${KAFKA_VERSION} ($(ls "$LIBS" | wc -l) jars) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- helpers ---

pid_alive() { pid_file_alive "$PID_FILE" "kafka.Kafka $RUN_DIR/server.properties"; }

running() { pid_alive && port_open "$KAFKA_PORT"; }

# A quick AdminClient check (JVM start ~1 s).
probe() { "$JAVA" -cp "$PROBE_DIR:$LIBS/*" WeirKafkaProbe "$BOOTSTRAP" "$1" >/dev/null; }

tool() {
    local cls="$1"; shift
    installed || die "Kafka ${KAFKA_VERSION} is not installed; run: $0 start"
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" \
        -cp "$LIBS/*" "$cls" "$@"
}

new_cluster_id() {
    # 16 random bytes, URL-safe base64 without padding (Kafka Uuid format);
    # Kafka never hands out ids starting with '-', so neither do we.
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* ]] && { printf '%s' "$id"; return; }
    done
}

write_config() {
    cat >"$RUN_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${KAFKA_PORT},CONTROLLER://${HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${RUN_DIR}/data
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=1
log.segment.bytes=16777216
EOF
    cat >"$RUN_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${LOG_FILE}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF
}

write_tools_log_config() {
    [[ -f "$HOME_DIR/tools-log4j2.properties" ]] && return 0
    cat >"$HOME_DIR/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

fail_start() {
    log "error: $1"
    if [[ -f "$LOG_FILE" ]]; then
        log "last 50 lines of $LOG_FILE:"
        tail -n 50 "$LOG_FILE" >&2 || true
    fi
    if pid_alive; then
        local pid; pid="$(cat "$PID_FILE")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    exit 1
}

# --------------------------------------------------------------- commands ---

cmd_start() {
    mkdir -p "$RUN_ROOT"
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "could not take $LOCK_FILE"

    if pid_alive; then
        # Ours is up (or still starting under an earlier call): just check it.
        if probe "$START_TIMEOUT"; then
            log "already running (pid $(cat "$PID_FILE")) at $BOOTSTRAP"
            echo "$BOOTSTRAP"
            return 0
        fi
        fail_start "pid $(cat "$PID_FILE") is alive but the broker does not answer on $BOOTSTRAP"
    fi
    rm -f "$PID_FILE"
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        port_open "$p" && die "port $HOST:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    done

    install
    write_tools_log_config

    local t0=$SECONDS cluster_id pid
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR/data"
    write_config
    cluster_id="$(new_cluster_id)"
    log "formatting storage in $RUN_DIR/data (cluster id $cluster_id)"
    if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" \
            -cp "$LIBS/*" kafka.tools.StorageTool format \
            -t "$cluster_id" -c "$RUN_DIR/server.properties" >"$RUN_DIR/format.log" 2>&1; then
        cat "$RUN_DIR/format.log" >&2
        die "kafka-storage format failed"
    fi

    log "starting Kafka ${KAFKA_VERSION} on $BOOTSTRAP (controller $HOST:$KAFKA_CONTROLLER_PORT)"
    # setsid: own session, so the broker survives the calling shell/test harness;
    # 9>&-: the broker must not inherit (and so hold forever) the start lock.
    setsid nohup "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" \
        -Dkafka.logs.dir="$RUN_DIR" \
        -cp "$LIBS/*" kafka.Kafka "$RUN_DIR/server.properties" \
        >"$RUN_DIR/stdout.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$KAFKA_PORT"; do
        kill -0 "$pid" 2>/dev/null || { cat "$RUN_DIR/stdout.log" >&2 || true; fail_start "broker exited during startup"; }
        ((SECONDS < deadline)) || fail_start "port $KAFKA_PORT did not open within ${START_TIMEOUT} s"
        sleep 0.2
    done
    local left=$((deadline - SECONDS)); ((left > 0)) || left=1
    probe "$left" || fail_start "broker did not answer metadata requests within ${START_TIMEOUT} s"
    log "ready (pid $pid) in $((SECONDS - t0)) s; log: $LOG_FILE"
    echo "$BOOTSTRAP"
}

cmd_stop() {
    mkdir -p "$RUN_ROOT"
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "could not take $LOCK_FILE"
    if pid_alive; then
        local pid; pid="$(cat "$PID_FILE")"
        log "stopping Kafka (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "still alive after 30 s, sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    else
        log "not running"
    fi
    rm -f "$PID_FILE"
    rm -rf "$RUN_DIR"
}

cmd_status() {
    if running; then
        log "running (pid $(cat "$PID_FILE")) at $BOOTSTRAP"
        echo "$BOOTSTRAP"
        return 0
    fi
    log "not running"
    return 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    install) install; write_tools_log_config ;;
    topics)
        tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
    create-topic)
        [[ $# -ge 1 ]] || usage
        tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
            --create --if-not-exists --topic "$1" --partitions "${2:-4}" --replication-factor 1 ;;
    produce)
        [[ $# -ge 1 ]] || usage
        tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" --topic "$1" ;;
    consume)
        [[ $# -ge 1 ]] || usage
        tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
            --topic "$1" --from-beginning --max-messages "${2:-1}" --timeout-ms "${3:-20000}" ;;
    *) usage ;;
esac
