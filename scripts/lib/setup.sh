# Set-up steps shared by scripts/test and scripts/run (sourced, not run). Each is idempotent:
# skipped when already done. System packages are installed with apt, as root or through sudo.
#
# The sourcing script sets SCRIPT (its name, for messages) first.

say() { echo "${SCRIPT:-scripts}: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=false
apt_install() {
  if [ "$apt_updated" = false ]; then
    as_root apt-get update -q >/dev/null
    apt_updated=true
  fi
  say "installing $* with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# redis-server and redis-cli, from Debian's redis-server package when either is missing.
ensure_redis_installed() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server
  fi
}

# Whether a Redis answers at HOST PORT: PONG, or a refusal that only a Redis gives (it wants a
# password, or is loading its data).
redis_answers() {
  redis-cli -h "$1" -p "$2" ping 2>/dev/null | grep -qE '^(PONG|NOAUTH|LOADING)'
}

# Waits up to 10 s for a Redis at HOST PORT to answer; fails when none does.
wait_for_redis() {
  for _ in $(seq 50); do
    redis_answers "$1" "$2" && return 0
    sleep 0.2
  done
  redis_answers "$1" "$2"
}
