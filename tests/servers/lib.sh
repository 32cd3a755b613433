# Helpers shared by the server scripts (kafka.sh, elasticsearch.sh,
# alertmanager.sh). Source it after setting SCRIPT (the script's name, for
# messages) and HOST.

log() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Whether something accepts TCP connections on $HOST:$1.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Whether the pid in file $1 is alive and its command line contains $2:
# the check against a recycled pid that now belongs to someone else.
pid_file_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}
