#!/usr/bin/env bash
# Install (Debian's prometheus-alertmanager) and run an Alertmanager on
# loopback for Weir's real-server tests. Gossip is disabled.
#
# usage: alertmanager.sh start|stop|status|install
#
# Environment (all optional):
#   ALERTMANAGER_PORT           web/API port                    (19094)
#   ALERTMANAGER_WEBHOOK_URL    where notifications are POSTed  (http://127.0.0.1:19095/webhook)
#   ALERTMANAGER_START_TIMEOUT  seconds to wait for readiness   (30)
#   WEIR_SERVERS_RUN            runtime state                   (/tmp/weir-servers)
# Routing: every distinct alert is its own group (group_by: ['...']),
# group_wait 0s, group_interval 1s, repeat_interval 1h, send_resolved: true.
# On success `start` prints the base URL (http://127.0.0.1:PORT) on stdout.
set -euo pipefail

AM_BIN=prometheus-alertmanager
AM_PORT="${ALERTMANAGER_PORT:-19094}"
WEBHOOK_URL="${ALERTMANAGER_WEBHOOK_URL:-http://127.0.0.1:19095/webhook}"
START_TIMEOUT="${ALERTMANAGER_START_TIMEOUT:-30}"
HOST=127.0.0.1
BASE_URL="http://$HOST:$AM_PORT"

RUN_ROOT="${WEIR_SERVERS_RUN:-/tmp/weir-servers}"
RUN_DIR="$RUN_ROOT/alertmanager"
PID_FILE="$RUN_ROOT/alertmanager.pid"   # outside RUN_DIR so a wiped RUN_DIR never loses it
LOG_FILE="$RUN_DIR/alertmanager.log"
LOCK_FILE="$RUN_ROOT/alertmanager.lock"

SCRIPT=alertmanager.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- install ---

POLICY_RC=/usr/sbin/policy-rc.d
cleanup_policy() { [[ -n "${OUR_POLICY:-}" ]] && rm -f "$POLICY_RC"; OUR_POLICY=; }

install() {
    command -v "$AM_BIN" >/dev/null && return 0
    [[ "$(id -u)" == 0 ]] || die "$AM_BIN is not installed and installing it needs root (apt-get install prometheus-alertmanager)"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # The package's postinst would start its own daemon (0.0.0.0:9093 with
    # gossip on :9094) wherever invoke-rc.d can; forbid that for the install.
    if [[ ! -e "$POLICY_RC" ]]; then
        OUR_POLICY=1
        trap cleanup_policy EXIT
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
    fi
    if ! apt-cache show prometheus-alertmanager >/dev/null 2>&1; then
        log "package index has no prometheus-alertmanager; running apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
    fi
    log "installing prometheus-alertmanager with apt-get"
    if ! apt-get install -y -q --no-install-recommends prometheus-alertmanager >"$RUN_ROOT/apt.log" 2>&1; then
        # A stale index can name a .deb that is gone from the mirror: refresh once.
        log "apt-get install failed; retrying after apt-get update"
        apt-get update -q >&2 || true
        apt-get install -y -q --no-install-recommends prometheus-alertmanager >"$RUN_ROOT/apt.log" 2>&1 \
            || { tail -n 30 "$RUN_ROOT/apt.log" >&2; die "apt-get install prometheus-alertmanager failed"; }
    fi
    rm -f "$RUN_ROOT/apt.log"
    cleanup_policy
    command -v "$AM_BIN" >/dev/null || die "$AM_BIN still not on PATH after install"
    log "installed $("$AM_BIN" --version 2>&1 | head -n 1) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- helpers ---

# HTTP status code of GET $1 ("000" when nothing answers).
http_code() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
    else
        python3 - "$1" <<'EOF' || true
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status, end="")
except urllib.error.HTTPError as e:
    print(e.code, end="")
except Exception:
    print("000", end="")
EOF
    fi
}

ready() { [[ "$(http_code "$BASE_URL/api/v2/status")" == 200 ]]; }

pid_alive() { pid_file_alive "$PID_FILE" "--storage.path=$RUN_DIR/data"; }

write_config() {
    cat >"$RUN_DIR/alertmanager.yml" <<EOF
route:
  receiver: webhook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: '${WEBHOOK_URL}'
        send_resolved: true
EOF
}

kill_ours() {
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after 10 s, sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

fail_start() {
    log "error: $1"
    if [[ -f "$LOG_FILE" ]]; then
        log "last 50 lines of $LOG_FILE:"
        tail -n 50 "$LOG_FILE" >&2 || true
    fi
    pid_alive && kill_ours
    rm -f "$PID_FILE"
    exit 1
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT)) pid; pid="$(cat "$PID_FILE")"
    until ready; do
        kill -0 "$pid" 2>/dev/null || fail_start "alertmanager exited during startup"
        ((SECONDS < deadline)) || fail_start "GET $BASE_URL/api/v2/status did not answer 200 within ${START_TIMEOUT} s"
        sleep 0.2
    done
}

# --------------------------------------------------------------- commands ---

cmd_start() {
    mkdir -p "$RUN_ROOT"
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "could not take $LOCK_FILE"

    if pid_alive; then
        wait_ready
        log "already running (pid $(cat "$PID_FILE")) at $BASE_URL"
        echo "$BASE_URL"
        return 0
    fi
    rm -f "$PID_FILE"
    port_open "$AM_PORT" && die "port $HOST:$AM_PORT is already in use by another process (set ALERTMANAGER_PORT)"

    install

    local t0=$SECONDS pid
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR/data"
    write_config
    log "starting $AM_BIN on $BASE_URL (webhook $WEBHOOK_URL)"
    # setsid: own session, so it survives the calling shell/test harness;
    # 9>&-: it must not inherit (and so hold forever) the start lock.
    setsid nohup "$AM_BIN" \
        --config.file="$RUN_DIR/alertmanager.yml" \
        --storage.path="$RUN_DIR/data" \
        --web.listen-address="$HOST:$AM_PORT" \
        --cluster.listen-address= \
        --log.level=info \
        >"$LOG_FILE" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready
    log "ready (pid $pid) in $((SECONDS - t0)) s; log: $LOG_FILE"
    echo "$BASE_URL"
}

cmd_stop() {
    mkdir -p "$RUN_ROOT"
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "could not take $LOCK_FILE"
    if pid_alive; then
        log "stopping Alertmanager (pid $(cat "$PID_FILE"))"
        kill_ours
    else
        log "not running"
    fi
    rm -f "$PID_FILE"
    rm -rf "$RUN_DIR"
}

cmd_status() {
    if pid_alive && ready; then
        log "running (pid $(cat "$PID_FILE")) at $BASE_URL"
        echo "$BASE_URL"
        return 0
    fi
    log "not running"
    return 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    install) mkdir -p "$RUN_ROOT"; install ;;
    *) usage ;;
esac
