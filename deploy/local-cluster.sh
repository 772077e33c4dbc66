#!/usr/bin/env bash
# A Herald cluster on loopback, without containers: Redis (one server, or a Redis Cluster of
# three masters), N gateways relaying through it, and the presence service.
#
#   deploy/local-cluster.sh [--gateways N] [--redis standalone|cluster] [--release]
#                           [--pin CPUS] [--base-port PORT] [-- COMMAND...]
#
# It prints every address, then waits for Ctrl-C (or SIGTERM) and stops everything it started,
# gateways first so that they drain. With a COMMAND, it runs it instead of waiting, with the
# addresses in its environment, stops the cluster, and exits with the command's status:
#
#   HERALD_WS_URL, HERALD_API_URL   gateway 1's WebSocket URL, and the HTTP API of gateway 2
#                                   (of gateway 1 when there is one): a round trip crosses nodes
#   HERALD_WS_ADDRS, HERALD_API_ADDRS   every gateway's host:port, comma-separated (for
#                                       herald-loadtest --ws and --api)
#   HERALD_PRESENCE_URL             the presence service's API
#   HERALD_REDIS_URL                the Redis URL (the seeds, in cluster mode)
#   HERALD_SERVER_PIDS              every server process, comma-separated (--server-pid)
#
# --pin CPUS runs the servers under `taskset -c CPUS`. --base-port PORT takes the ports from
# PORT on (Redis first, then each gateway's WebSocket and API ports, then the presence
# service) instead of free ones. Gateways allow client publishes and presence in the `room`
# and `demo` namespaces (the demo page's). HERALD_BIN=DIR takes the binaries from DIR instead
# of building them. The servers' logs are in a temporary directory, removed when everything
# went well and kept (and named) when something failed.
set -euo pipefail
cd "$(dirname "$0")/.."

gateways=3
mode=standalone
profile=debug
pin=()
base_port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gateways) gateways=$2; shift 2 ;;
    --redis) mode=$2; shift 2 ;;
    --release) profile=release; shift ;;
    --pin) pin=(taskset -c "$2"); shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$mode" in standalone|cluster) ;; *) echo "--redis standalone|cluster" >&2; exit 2 ;; esac
[ "$gateways" -ge 1 ] 2>/dev/null || { echo "--gateways takes a number of at least 1" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is needed (scripts/test installs it)" >&2; exit 1; }
if [ -n "$base_port" ] && ! { [ "$base_port" -ge 1024 ] && [ "$base_port" -le 55000 ]; } 2>/dev/null; then
  echo "--base-port takes a port from 1024 to 55000" >&2
  exit 2
fi

# HERALD_BIN=DIR uses binaries built elsewhere (tests set it) instead of building.
if [ -n "${HERALD_BIN:-}" ]; then
  bin=$HERALD_BIN
  for b in herald-gateway herald-presence; do
    [ -x "$bin/$b" ] || { echo "binary not found: $bin/$b (HERALD_BIN=$HERALD_BIN)" >&2; exit 1; }
  done
elif [ "$profile" = release ]; then
  cargo build --release --quiet --locked -p herald-gateway -p herald-presence
  bin="target/release"
else
  cargo build --quiet --locked -p herald-gateway -p herald-presence
  bin="target/debug"
fi
work=$(mktemp -d)
redis_pids=()
service_pids=()

stop() {
  # Gateways and the presence service first (SIGTERM: they drain), then Redis.
  for pid in "${service_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${service_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${redis_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${redis_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Stopped by a signal (Ctrl-C) is a normal stop too.
  if [ "$1" -eq 0 ] || [ -n "$signalled" ]; then
    rm -rf "$work"
  else
    echo "local-cluster: exit status $1; the servers' logs are kept in $work" >&2
  fi
}
trap 'stop $?' EXIT
signalled=""
trap 'signalled=1; exit 130' INT TERM

# free_ports N: N distinct free ports (each with its cluster bus port, +10000, free too).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port >= 55000:
        s.close(); continue
    bus = socket.socket()
    try:
        bus.bind(("127.0.0.1", port + 10000))
    except OSError:
        s.close(); continue
    held += [s, bus]; ports.append(port)
print(" ".join(map(str, ports)))
PY
}

# wait_for DESCRIPTION COMMAND...: up to 10 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$what did not come up; logs in $work" >&2
  exit 1
}

masters=1
[ "$mode" = cluster ] && masters=3
needed=$((masters + 2 * gateways + 1))
if [ -n "$base_port" ]; then
  read -r -a ports <<<"$(seq -s ' ' "$base_port" $((base_port + needed - 1)))"
else
  read -r -a ports <<<"$(free_ports "$needed")"
fi
next=0
take() { port=${ports[$next]}; next=$((next + 1)); }

redis_urls=()
for i in $(seq 1 "$masters"); do
  take
  extra=()
  if [ "$mode" = cluster ]; then
    extra=(--cluster-enabled yes --cluster-config-file "$work/nodes-$port.conf" --cluster-node-timeout 2000)
  fi
  "${pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --logfile "$work/redis-$port.log" "${extra[@]}" &
  redis_pids+=($!)
  wait_for "redis-server on $port" redis-cli -p "$port" ping
  redis_urls+=("redis://127.0.0.1:$port")
done
if [ "$mode" = cluster ]; then
  addrs=()
  for url in "${redis_urls[@]}"; do addrs+=("${url#redis://}"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-yes >"$work/cluster-create.log" 2>&1
  cluster_ok() {
    for url in "${redis_urls[@]}"; do
      redis-cli -u "$url" cluster info | grep -q 'cluster_state:ok' || return 1
    done
  }
  wait_for "the Redis Cluster" cluster_ok
fi
redis_url=$(IFS=,; echo "${redis_urls[*]}")

common=(HERALD__BROKER__KIND=redis "HERALD__BROKER__REDIS__MODE=$mode"
  "HERALD__BROKER__REDIS__URL=$redis_url" HERALD__NAMESPACES__ROOM__PRESENCE=true
  HERALD__NAMESPACES__ROOM__PUBLISH=true HERALD__NAMESPACES__DEMO__PRESENCE=true
  HERALD__NAMESPACES__DEMO__PUBLISH=true HERALD__SHUTDOWN__DRAIN_WINDOW=1s
  HERALD__SHUTDOWN__GRACE_PERIOD=3s HERALD__LOG__LEVEL=warn)
ws_addrs=()
api_addrs=()
for i in $(seq 1 "$gateways"); do
  take; ws=$port
  take; api=$port
  env "${common[@]}" HERALD__LISTEN__WEBSOCKET="127.0.0.1:$ws" HERALD__LISTEN__API="127.0.0.1:$api" \
    "${pin[@]}" "$bin/herald-gateway" 2>"$work/gateway-$i.log" &
  service_pids+=($!)
  ws_addrs+=("127.0.0.1:$ws")
  api_addrs+=("127.0.0.1:$api")
done
take; presence_port=$port
env HERALD__REDIS__MODE="$mode" HERALD__REDIS__URL="$redis_url" \
  HERALD__LISTEN__API="127.0.0.1:$presence_port" HERALD__LOG__LEVEL=warn \
  "${pin[@]}" "$bin/herald-presence" 2>"$work/presence.log" &
service_pids+=($!)
for api in "${api_addrs[@]}" "127.0.0.1:$presence_port"; do
  wait_for "the service on $api" curl -fs "http://$api/readyz"
done

export HERALD_WS_URL="ws://${ws_addrs[0]}/ws"
export HERALD_API_URL="http://${api_addrs[$((gateways > 1 ? 1 : 0))]}"
HERALD_WS_ADDRS=$(IFS=,; echo "${ws_addrs[*]}")
HERALD_API_ADDRS=$(IFS=,; echo "${api_addrs[*]}")
HERALD_SERVER_PIDS=$(IFS=,; echo "${service_pids[*]},${redis_pids[*]}")
export HERALD_WS_ADDRS HERALD_API_ADDRS HERALD_SERVER_PIDS
export HERALD_PRESENCE_URL="http://127.0.0.1:$presence_port"
export HERALD_REDIS_URL="$redis_url"

echo "Herald on loopback: $gateways gateway(s), Redis $mode"
for i in $(seq 0 $((gateways - 1))); do
  echo "  gateway $((i + 1)): ws://${ws_addrs[$i]}/ws   api http://${api_addrs[$i]}"
done
echo "  presence service: $HERALD_PRESENCE_URL"
echo "  redis: $redis_url"
echo "  pids: $HERALD_SERVER_PIDS"

if [ $# -gt 0 ]; then
  status=0
  "$@" || status=$?
  exit "$status"
fi
echo "Ctrl-C stops everything."
# `wait` returns at once on a signal, where a foreground sleep would delay the stop.
while true; do
  sleep 3600 &
  wait $! || true
done
