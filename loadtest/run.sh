#!/usr/bin/env bash
# Runs one load scenario against gateways started here, on loopback, and stops them after.
#
#   loadtest/run.sh idle       [herald-loadtest idle options]     e.g. --connections 15000
#       HERALD_LOADTEST_GATEWAYS=5 loadtest/run.sh idle --connections 100000 --workers 6 --source-ips 4
#   loadtest/run.sh fanout     [herald-loadtest fanout options]   e.g. --rates 300,500,1000
#   loadtest/run.sh cross-node [herald-loadtest fanout options]   two gateways + redis-server
#   loadtest/run.sh churn      [herald-loadtest churn options]    e.g. --rate 2000 --seconds 10
#       HERALD_LOADTEST_BROKER=redis loadtest/run.sh churn ...     the gateway on a redis-server
#   loadtest/run.sh slow       [herald-loadtest fanout options]   fanout without, then with 1%
#                                                                 of subscribers not reading
#   loadtest/run.sh storm      [herald-loadtest storm options]    e.g. --clients 5000 --missed 100
#                                                                 one gateway + redis-server
#
# `idle --sse` and `fanout --sse` hold Server-Sent Events streams (GET /v1/sse) instead of
# WebSocket connections.
#
# HERALD_LOADTEST_TLS=1 runs any scenario over wss: the gateways get a self-signed P-256
# certificate made here with openssl, and the generator connects with `--tls --insecure`
# (add `--no-resume` to make every connection a full handshake).
#
# The servers are pinned to core 0 and the generator to core 1 when there are two cores.
# The JSON report goes to loadtest/reports/<scenario>-<UTC time>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: loadtest/run.sh idle|fanout|cross-node [options]}
shift

# HERALD_LOADTEST_PROFILE=debug runs the debug binaries (the smoke test does; figures from
# them mean nothing).
if [ "${HERALD_LOADTEST_PROFILE:-release}" = debug ]; then
  cargo build --quiet -p herald-gateway -p herald-loadtest
  bin=target/debug
else
  cargo build --release --quiet -p herald-gateway -p herald-loadtest
  bin=target/release
fi
# HERALD_LOADTEST_GATEWAY=<path> runs that gateway binary instead of the one just built: to
# compare two builds in one sitting, copy each aside and alternate runs between them.
gateway="${HERALD_LOADTEST_GATEWAY:-$bin/herald-gateway}"
mkdir -p loadtest/reports
report="${HERALD_LOADTEST_REPORT:-loadtest/reports/$scenario-$(date -u +%Y%m%dT%H%M%SZ).json}"

server_pin=()
generator_pin=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0)
  generator_pin=(taskset -c 1)
fi

pids=()
tls_dir=""
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$tls_dir" ] || rm -rf "$tls_dir"
}
trap cleanup EXIT

tls_env=()
if [ "${HERALD_LOADTEST_TLS:-0}" = 1 ]; then
  tls_dir=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null
  tls_env=("HERALD__WEBSOCKET__TLS_CERT_FILE=$tls_dir/cert.pem"
    "HERALD__WEBSOCKET__TLS_KEY_FILE=$tls_dir/key.pem")
  set -- "$@" --tls --insecure
fi

# Distinct free ports: all sockets stay bound until every port is chosen.
ports=()
take_ports() {
  mapfile -t ports < <(python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))' "$1")
}
take_ports 32
next_port=0
# port VAR: assigns the next distinct free port to VAR.
port() {
  printf -v "$1" '%s' "${ports[$next_port]}"
  next_port=$((next_port + 1))
}

wait_ready() {
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.05
  done
  echo "gateway on :$1 did not become ready" >&2
  exit 1
}

# start_gateway WS_PORT API_PORT [VAR=value...]: prints nothing, appends the pid.
start_gateway() {
  local ws=$1 api=$2
  shift 2
  env HERALD__LISTEN__WEBSOCKET="127.0.0.1:$ws" HERALD__LISTEN__API="127.0.0.1:$api" \
    HERALD__LOG__LEVEL=warn "${tls_env[@]}" "$@" "${server_pin[@]}" "$gateway" &
  pids+=($!)
  wait_ready "$api"
}

# start_redis: a redis-server on a free port (redis_port), its gateway settings in `redis`.
start_redis() {
  command -v redis-server >/dev/null || { echo "redis-server is needed (scripts/test installs it)" >&2; exit 1; }
  port redis_port
  "${server_pin[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >/dev/null &
  pids+=($!)
  sleep 0.3
  redis=(HERALD__BROKER__KIND=redis "HERALD__BROKER__REDIS__URL=redis://127.0.0.1:$redis_port")
}

ulimit -n 20000 2>/dev/null || true
case "$scenario" in
  idle)
    # HERALD_LOADTEST_GATEWAYS=N starts N gateways (each holds at most its open-file limit);
    # combine with --workers and --source-ips for runs beyond 20k connections.
    addrs=()
    for _ in $(seq 1 "${HERALD_LOADTEST_GATEWAYS:-1}"); do
      port ws; port api
      start_gateway "$ws" "$api"
      addrs+=("127.0.0.1:$ws")
    done
    "${generator_pin[@]}" "$bin/herald-loadtest" idle --ws "$(IFS=,; echo "${addrs[*]}")" \
      --server-pid "$(IFS=,; echo "${pids[*]}")" --report "$report" "$@"
    ;;
  fanout)
    port ws; port api
    start_gateway "$ws" "$api"
    "${generator_pin[@]}" "$bin/herald-loadtest" fanout --ws "127.0.0.1:$ws" --api "127.0.0.1:$api" \
      --server-pid "${pids[0]}" --report "$report" "$@"
    ;;
  churn)
    # HERALD_LOADTEST_BROKER=redis runs the gateway on a redis-server (its CPU counted too).
    broker=()
    if [ "${HERALD_LOADTEST_BROKER:-embedded}" = redis ]; then
      start_redis
      broker=("${redis[@]}")
    fi
    port ws; port api
    start_gateway "$ws" "$api" "${broker[@]}"
    "${generator_pin[@]}" "$bin/herald-loadtest" churn --ws "127.0.0.1:$ws" \
      --server-pid "$(IFS=,; echo "${pids[*]}")" --report "$report" "$@"
    ;;
  slow)
    # A 64 KiB outbound queue so that stalled clients are evicted within a short run (it must
    # hold two of the largest publications, so those are 32 KiB here).
    port ws; port api
    start_gateway "$ws" "$api" HERALD__WEBSOCKET__OUTBOUND_QUEUE_BYTES=65536 \
      HERALD__API__MAX_DATA_SIZE=32768 HERALD__WEBSOCKET__MAX_MESSAGE_SIZE=32768
    for fraction in 0 0.01; do
      "${generator_pin[@]}" "$bin/herald-loadtest" fanout --ws "127.0.0.1:$ws" --api "127.0.0.1:$api" \
        --server-pid "${pids[0]}" --stalled-fraction "$fraction" \
        --report "${report%.json}-stalled-$fraction.json" "$@"
    done
    ;;
  cross-node)
    start_redis
    port ws_b; port api_b; port ws_a; port api_a
    start_gateway "$ws_b" "$api_b" "${redis[@]}"
    start_gateway "$ws_a" "$api_a" "${redis[@]}"
    # Subscribers on node B, publications through node A; server CPU counts B, A and Redis.
    "${generator_pin[@]}" "$bin/herald-loadtest" fanout --ws "127.0.0.1:$ws_b" --api "127.0.0.1:$api_a" \
      --server-pid "${pids[1]},${pids[2]},${pids[0]}" --report "$report" "$@"
    ;;
  storm)
    # Clients that come back at once and recover what they missed, from one gateway on Redis.
    start_redis
    port ws; port api
    start_gateway "$ws" "$api" "${redis[@]}"
    "${generator_pin[@]}" "$bin/herald-loadtest" storm --ws "127.0.0.1:$ws" --api "127.0.0.1:$api" \
      --redis "127.0.0.1:$redis_port" --server-pid "${pids[1]},${pids[0]}" --report "$report" "$@"
    ;;
  *)
    echo "unknown scenario $scenario (idle, fanout, cross-node, slow, churn, storm)" >&2
    exit 2
    ;;
esac
