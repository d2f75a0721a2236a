# shellcheck shell=bash
# Sourced by qwen3vl-keysync (new keys) and qwen3vl-bootstrap renew-cert (new certificate).
#
# nginx's reload starts new workers with the new configuration, then tells the old ones to stop
# accepting (they finish what they serve). Until they have, a new connection can still reach an
# old worker: the old keys, the old certificate. reload_gateway returns only once none accepts.

# The pids of MASTER's workers that still accept connections (a stopping worker is renamed
# "nginx: worker process is shutting down").
gateway_workers() {
  ps -o pid=,args= --ppid "$1" | awk '/nginx: worker process$/ {print $1}'
}

# reload_gateway NGINX CONF MASTER: 0 when every worker serves CONF; 1 when nginx rejects CONF
# (nothing reloaded); 2 when the reload signal fails or old workers still accept after 10 s.
reload_gateway() {
  local nginx=$1 conf=$2 master=$3 serving still _
  # nginx -t output can quote configuration lines: never print it.
  "$nginx" -q -t -c "$conf" >/dev/null 2>&1 || return 1
  serving=$(gateway_workers "$master")
  "$nginx" -c "$conf" -s reload || return 2
  for _ in {1..100}; do
    still=$(comm -12 <(sort <<<"$serving") <(gateway_workers "$master" | sort))
    [[ -n $still ]] || return 0
    sleep 0.1
  done
  return 2
}
