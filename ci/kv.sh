#!/usr/bin/env bash
# The Redis-protocol example (examples/kv) beside redis-server, in ONE run on
# loopback, bounded in time:
#   - redis-cli smoke commands against goro's kv (PING must answer PONG);
#   - redis-benchmark -t set,get -n 200000 -c 50, pipelining -P 1 and -P 16,
#     against goro's kv (each --store in $STORES) and against redis-server
#     (no persistence) on another port;
#   - SIGTERM to goro's kv, which must exit 0 by itself.
# Prints requests per second for each, the ratio to redis-server, and the CPU
# seconds redis-benchmark itself used (it is single-threaded: on 2 cores it
# takes one of them away from the server under test).
# Usage: bash ci/kv.sh     (N=requests, default 200000; STORES="locks owners")
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
STORES=${STORES:-locks owners}
GORO_PORT=16380
REDIS_PORT=16379

# redis-cli/redis-benchmark (redis-tools) and redis-server from apt when
# missing; sudo only when not root.
if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=sudo
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q redis-tools redis-server >/dev/null
fi

cargo build --release -q --example kv
kv="${CARGO_TARGET_DIR:-target}/release/examples/kv"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# wait_port PORT: until it accepts (at most 10 s).
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listening on port $1"; exit 1
}

# stop_kv PID: SIGTERM; it must exit 0 within 10 s.
stop_kv() {
  kill -TERM "$1"
  local status=0
  timeout 10 tail --pid="$1" -f /dev/null || { echo "kv did not stop on SIGTERM"; exit 1; }
  wait "$1" || status=$?
  [ "$status" -eq 0 ] || { echo "kv exited with status $status"; exit 1; }
}

smoke() { # PORT
  local cli=(timeout 10 redis-cli -p "$1")
  [ "$("${cli[@]}" ping)" = PONG ] || { echo "redis-cli ping: no PONG"; exit 1; }
  "${cli[@]}" set smoke:a hello >/dev/null
  [ "$("${cli[@]}" get smoke:a)" = hello ]
  [ "$("${cli[@]}" incrby smoke:n 41)" = 41 ]
  [ "$("${cli[@]}" set smoke:t v px 100000)" = OK ]
  [ "$("${cli[@]}" keys 'smoke:*' | wc -l)" = 3 ]
  "${cli[@]}" info goro | grep -q '^goroutines:' || [ "$1" = "$REDIS_PORT" ]
  "${cli[@]}" del smoke:a smoke:n smoke:t >/dev/null
  echo "  redis-cli smoke on port $1: ok"
}

declare -A rps cpu
# bench NAME PORT: fills rps[NAME,SET,P] and rps[NAME,GET,P].
bench() {
  local name=$1 port=$2 p out err t
  for p in 1 16; do
    out=$(mktemp); err=$(mktemp)
    if ! t=$( { TIMEFORMAT='%U %S'; time timeout 120 redis-benchmark -p "$port" -t set,get \
           -n "$N" -c 50 -P "$p" --csv >"$out" 2>"$err"; } 2>&1 ); then
      echo "redis-benchmark against $name -P $p failed or timed out:"; cat "$err" "$out"; exit 1
    fi
    if grep -qi error "$err" "$out"; then
      echo "redis-benchmark against $name -P $p reported errors:"; cat "$err" "$out"; exit 1
    fi
    rps[$name,SET,$p]=$(awk -F'"' '$2 == "SET" {print $4}' "$out")
    rps[$name,GET,$p]=$(awk -F'"' '$2 == "GET" {print $4}' "$out")
    cpu[$name,$p]=$(echo "$t" | awk '{printf "%.1f", $1 + $2}')
    echo "  $name -P $p: SET ${rps[$name,SET,$p]} GET ${rps[$name,GET,$p]} rps" \
         "(redis-benchmark CPU ${cpu[$name,$p]} s)"
    rm -f "$out" "$err"
  done
}

names=()
echo "== redis-server $(redis-server --version | awk '{print $3}') on port $REDIS_PORT"
redis-server --save '' --appendonly no --port "$REDIS_PORT" --daemonize no >/dev/null &
pids+=($!)
redis_pid=$!
wait_port "$REDIS_PORT"
smoke "$REDIS_PORT"
bench redis-server "$REDIS_PORT"
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true

for store in $STORES; do
  name="goro-kv/$store"
  names+=("$name")
  echo "== $name on port $GORO_PORT"
  "$kv" --addr "127.0.0.1:$GORO_PORT" --procs 2 --store "$store" &
  pid=$!
  pids+=("$pid")
  wait_port "$GORO_PORT"
  smoke "$GORO_PORT"
  bench "$name" "$GORO_PORT"
  stop_kv "$pid"
done

echo
echo "redis-benchmark -t set,get -n $N -c 50 (requests per second; ratio to redis-server)"
printf '%-22s %-4s %12s %12s %8s\n' server test "-P 1" "-P 16" "x redis"
for name in redis-server "${names[@]}"; do
  for t in SET GET; do
    printf '%-22s %-4s %12s %12s %8s\n' "$name" "$t" "${rps[$name,$t,1]}" "${rps[$name,$t,16]}" \
      "$(awk -v a="${rps[$name,$t,1]}" -v b="${rps[redis-server,$t,1]}" \
            -v c="${rps[$name,$t,16]}" -v d="${rps[redis-server,$t,16]}" \
            'BEGIN {printf "%.2f/%.2f", a / b, c / d}')"
  done
done
echo "(x redis: -P 1 ratio / -P 16 ratio. redis-benchmark is single-threaded and used" \
     "$(printf '%s ' "${cpu[@]}")CPU-s in its runs: one of the 2 cores.)"
