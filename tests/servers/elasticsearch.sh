#!/usr/bin/env bash
# Install, start, stop and check a throwaway Elasticsearch for Weir's
# real-server tests.
#
#   tests/servers/elasticsearch.sh start|stop|restart|status
#
# install: the integ-test-zip distribution from Maven Central, fetched with
#          mvn and unzipped into $WEIR_SERVERS_DIR/elasticsearch-$ES_VERSION
#          (skipped when already there).
# start:   single node on 127.0.0.1:$ES_PORT, security off, 512 MiB heap, data
#          and logs in $WEIR_SERVERS_RUN/elasticsearch (wiped on every fresh
#          start). Does nothing when it is already running and healthy.
#          As root it runs as the unprivileged system user $ES_USER, because
#          Elasticsearch refuses to run as root.
# stop:    kills what start started (pid file), waits, removes the run dir.
# restart: kills it and starts it again on the SAME data (nothing wiped), as
#          an operator's rolling restart does; for tests of outages mid-ingest.
# status:  exit 0 when the cluster answers healthy (yellow or green).
#
# Environment (all optional):
#   ES_VERSION         8.19.21 (latest integ-test-zip on Maven Central; 9.x is
#                      not published there)
#   ES_PORT            19200      ES_TRANSPORT_PORT  19300
#   ES_HEAP            512m       ES_USER            weir-es (only used as root)
#   ES_JAVA_HOME       JDK to run on; default: the newest JDK 17..25 found in
#                      $JAVA_HOME, /usr/lib/jvm, /opt and the `java` on PATH
#   ES_START_TIMEOUT   120 (seconds)
#   WEIR_SERVERS_DIR   $HOME/.cache/weir/servers   (installs)
#   WEIR_SERVERS_RUN   /tmp/weir-servers           (run dirs)
set -euo pipefail

ES_VERSION="${ES_VERSION:-8.19.21}"
ES_PORT="${ES_PORT:-19200}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-19300}"
ES_HEAP="${ES_HEAP:-512m}"
ES_USER="${ES_USER:-weir-es}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-120}"
SERVERS_DIR="${WEIR_SERVERS_DIR:-$HOME/.cache/weir/servers}"
RUN_ROOT="${WEIR_SERVERS_RUN:-/tmp/weir-servers}"
RUN_DIR="$RUN_ROOT/elasticsearch"
ES_HOME="$SERVERS_DIR/elasticsearch-$ES_VERSION"
PID_FILE="$RUN_DIR/es.pid"
LOCK_FILE="$RUN_ROOT/elasticsearch.lock"
URL="http://127.0.0.1:$ES_PORT"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"

SCRIPT=elasticsearch.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

healthy() {
    curl -fsS -o /dev/null --max-time 5 \
        "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null
}

# The pid of the Elasticsearch this script started: the one in the pid file if
# alive, else (pid file lost) a process whose command line names our tmp dir.
running_pid() {
    local pid
    if [ -s "$PID_FILE" ]; then
        pid="$(tr -dc 0-9 <"$PID_FILE")"
        if [ -n "$pid" ] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" |
                grep -qxF -- "-Djava.io.tmpdir=$RUN_DIR/tmp"; then
            echo "$pid"; return 0
        fi
    fi
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        if tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" |
                grep -qxF -- "-Djava.io.tmpdir=$RUN_DIR/tmp"; then
            echo "$pid"; return 0
        fi
    done
    return 1
}

show_logs() {
    local f
    for f in "$RUN_DIR/launcher.out" "$RUN_DIR/logs/weir-test.log"; do
        [ -s "$f" ] || continue
        log "---- last 50 lines of $f ----"
        tail -n 50 "$f" >&2
    done
}

# ---------------------------------------------------------------- install

install() {
    [ -x "$ES_HOME/bin/elasticsearch" ] && return 0
    command -v mvn >/dev/null || die "mvn not found (needed to fetch $ARTIFACT)"
    command -v unzip >/dev/null || die "unzip not found"
    mkdir -p "$SERVERS_DIR"
    local tmp
    tmp="$(mktemp -d "$SERVERS_DIR/.elasticsearch-$ES_VERSION.XXXXXX")"
    log "installing Elasticsearch $ES_VERSION from Maven Central into $ES_HOME"
    if ! mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" \
            -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        die "mvn could not fetch $ARTIFACT"
    fi
    unzip -q "$tmp/elasticsearch-$ES_VERSION.zip" -d "$tmp"
    [ -x "$tmp/elasticsearch-$ES_VERSION/bin/elasticsearch" ] || { rm -rf "$tmp"; die "unexpected zip layout"; }
    chmod -R a+rX "$tmp/elasticsearch-$ES_VERSION"
    mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
    rm -rf "$tmp"
}

# ---------------------------------------------------------------- java

java_major() { # JDK home -> major version, from its release file or `java -version`
    local v
    v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null)"
    [ -n "$v" ] || v="$("$1/bin/java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')"
    echo "${v:-0}"
}

pick_java() {
    if [ -n "${ES_JAVA_HOME:-}" ]; then
        [ -x "$ES_JAVA_HOME/bin/java" ] || die "ES_JAVA_HOME=$ES_JAVA_HOME has no bin/java"
        echo "$ES_JAVA_HOME"; return
    fi
    local min=17 max=25 best="" best_major=0 d m j
    case "$ES_VERSION" in 7.*|8.*) min=17 ;; *) min=21 ;; esac
    local candidates=()
    [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
    for d in /usr/lib/jvm/* /opt/*; do candidates+=("$d"); done
    if j="$(command -v java)"; then candidates+=("$(dirname "$(dirname "$(readlink -f "$j")")")"); fi
    for d in "${candidates[@]}"; do
        [ -x "$d/bin/java" ] || continue
        m="$(java_major "$d")"
        if [ "$m" -ge "$min" ] && [ "$m" -le "$max" ] && [ "$m" -gt "$best_major" ]; then
            best="$(readlink -f "$d")"; best_major="$m"
        fi
    done
    [ -n "$best" ] || die "no JDK $min..$max found for Elasticsearch $ES_VERSION (set ES_JAVA_HOME)"
    echo "$best"
}

# ---------------------------------------------------------------- start

# Run a command as the Elasticsearch user (root) or as ourselves (non-root).
as_es() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$ES_USER" -- "$@"; else "$@"; fi
}

start() {
    if healthy; then echo "$URL"; return 0; fi
    install

    if [ -z "$(running_pid || true)" ]; then
        launch
    else
        log "Elasticsearch (pid $(running_pid)) is running but not healthy yet; waiting"
    fi
    wait_healthy
}

restart() {
    install
    kill_running || true
    launch keep-data
    wait_healthy
}

wait_healthy() {
    local began=$SECONDS deadline=$((SECONDS + ES_START_TIMEOUT))
    until healthy; do
        # -d returns once the node is up, so a missing process means it died.
        if [ $((SECONDS - began)) -ge 5 ] && [ -z "$(running_pid || true)" ]; then
            log "Elasticsearch exited during startup"
            show_logs; exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "Elasticsearch not healthy at $URL after ${ES_START_TIMEOUT}s"
            show_logs; exit 1
        fi
        sleep 1
    done
    echo "$URL"
}

launch() { # [keep-data]
    local java_home es_home="$ES_HOME" keep="${1:-}"
    java_home="$(pick_java)"

    if [ "$(id -u)" -eq 0 ]; then
        id -u "$ES_USER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
    fi

    [ -n "$keep" ] || rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"/{data,logs,tmp}
    rm -rf "$RUN_DIR/config" "$RUN_DIR/home"
    cp -R "$ES_HOME/config" "$RUN_DIR/config"

    # As root the installs live under /root (mode 700), which the ES user
    # cannot traverse. Then run from hard links (same file system) or a copy
    # inside the run dir; both stay root-owned and read-only to that user.
    if [ "$(id -u)" -eq 0 ] && ! runuser -u "$ES_USER" -- test -r "$ES_HOME/lib/elasticsearch-$ES_VERSION.jar"; then
        es_home="$RUN_DIR/home"
        mkdir -p "$es_home"
        local d
        for d in bin lib modules plugins; do
            cp -al "$ES_HOME/$d" "$es_home/$d" 2>/dev/null || cp -a "$ES_HOME/$d" "$es_home/$d"
        done
    fi

    cat >"$RUN_DIR/config/elasticsearch.yml" <<EOF
cluster.name: weir-test
node.name: weir-test-1
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
discovery.type: single-node
path.data: $RUN_DIR/data
path.logs: $RUN_DIR/logs
xpack.security.enabled: false
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
EOF

    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$ES_USER:" "$RUN_DIR"/{data,logs,tmp,config}
        chown "$ES_USER:" "$RUN_DIR"
    fi

    log "starting Elasticsearch $ES_VERSION on $URL (JDK $(java_major "$java_home") at $java_home)"
    # -d daemonizes once the node has started; the server writes the pid file.
    if ! (cd "$RUN_DIR" && as_es env \
            ES_JAVA_HOME="$java_home" \
            ES_PATH_CONF="$RUN_DIR/config" \
            ES_TMPDIR="$RUN_DIR/tmp" \
            ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${ES_EXTRA_JAVA_OPTS:-}" \
            "$es_home/bin/elasticsearch" -d -p "$PID_FILE" \
            >"$RUN_DIR/launcher.out" 2>&1 </dev/null); then
        log "the Elasticsearch launcher failed"
        show_logs; exit 1
    fi
}

# ---------------------------------------------------------------- stop

# Kill what start started, if it runs; true when nothing of ours runs after.
kill_running() {
    local pid i
    pid="$(running_pid)" || return 1
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
        [ -d "/proc/$pid" ] || break
        sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
        log "pid $pid ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 20); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
    fi
    log "stopped (pid $pid)"
}

stop() {
    if ! kill_running && healthy; then
        die "something answers at $URL but it was not started by this script (no live pid in $PID_FILE)"
    fi
    rm -rf "$RUN_DIR"
}

status() {
    if healthy; then echo "$URL"; return 0; fi
    log "not healthy at $URL"
    return 1
}

# ---------------------------------------------------------------- main

cmd="${1:-}"
case "$cmd" in
    start|stop|restart|status) ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac

mkdir -p "$RUN_ROOT"
chmod 755 "$RUN_ROOT" 2>/dev/null || true
# One start/stop at a time (parallel test runners may call start together).
exec 9>"$LOCK_FILE"
flock 9
"$cmd"
