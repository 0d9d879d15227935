#!/usr/bin/env bash
# The Redis-protocol example (examples/kv) beside redis-server, in ONE run on
# loopback, bounded in time:
#   - redis-cli smoke commands against goro's kv (PING must answer PONG);
#   - redis-benchmark -t set,get -n 200000 -c 50, pipelining -P 1 and -P 16,
#     against goro's kv (each --store in $STORES) and against redis-server
#     (no persistence) on another port;
#   - SIGTERM to goro's kv, which must exit 0 by itself.
# Prints the best requests per second of $REPS interleaved runs for each, the
# ratio to redis-server, and CPU-µs per request of each server and of
# redis-benchmark itself (single-threaded: on 2 cores it takes one of them
# away from the server under test).
# Usage: bash ci/kv.sh     (N=requests, default 200000; REPS=3;
#                           STORES="locks owners"; GORO_NETPOLL=epoll or
#                           uring forces goro-kv's backend, printed by the
#                           smoke line)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
STORES=${STORES:-locks owners}
REPS=${REPS:-3}
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
  local backend
  backend=$("${cli[@]}" info goro | tr -d '\r' | awk -F: '$1 == "netpoll_backend" {print ", netpoll " $2}')
  echo "  redis-cli smoke on port $1: ok$backend"
}

declare -A rps cpu srv wall
TCK=$(getconf CLK_TCK)
# server_ticks PID: utime+stime of all the server's threads, in clock ticks.
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# machine_ticks and steal_since.
. ci/steal.bash

# bench NAME PORT PID P: one redis-benchmark run; keeps the best rps per
# test over the reps, and sums the server's and redis-benchmark's CPU time
# and redis-benchmark's wall time.
bench() {
  local name=$1 port=$2 pid=$3 p=$4 out err t before after test value machine
  out=$(mktemp); err=$(mktemp)
  machine=$(machine_ticks)
  before=$(server_ticks "$pid")
  if ! t=$( { TIMEFORMAT='%U %S %R'; time timeout 120 redis-benchmark -p "$port" -t set,get \
         -n "$N" -c 50 -P "$p" --csv >"$out" 2>"$err"; } 2>&1 ); then
    echo "redis-benchmark against $name -P $p failed or timed out:"; cat "$err" "$out"; exit 1
  fi
  after=$(server_ticks "$pid")
  if grep -qi error "$err" "$out"; then
    echo "redis-benchmark against $name -P $p reported errors:"; cat "$err" "$out"; exit 1
  fi
  for test in SET GET; do
    value=$(awk -F'"' -v t="$test" '$2 == t {print $4}' "$out")
    rps[$name,$test,$p]=$(awk -v a="$value" -v b="${rps[$name,$test,$p]:-0}" 'BEGIN {print (a > b ? a : b)}')
  done
  cpu[$name,$p]=$(echo "$t" | awk -v c="${cpu[$name,$p]:-0}" '{printf "%.2f", c + $1 + $2}')
  wall[$name,$p]=$(echo "$t" | awk -v w="${wall[$name,$p]:-0}" '{printf "%.2f", w + $3}')
  srv[$name,$p]=$(( ${srv[$name,$p]:-0} + after - before ))
  echo "  $name -P $p: $(awk -F'"' '$2 == "SET" || $2 == "GET" {printf "%s %s  ", $2, $4}' "$out")steal $(steal_since "$machine") %"
  rm -f "$out" "$err"
}

# All servers run at once and the runs interleave, so that contention from
# whatever else the machine is doing hits each of them alike.
names=(redis-server)
ports=("$REDIS_PORT")
redis-server --save '' --appendonly no --port "$REDIS_PORT" --daemonize no >/dev/null &
pids+=($!)
server_pids=($!)
port=$GORO_PORT
for store in $STORES; do
  "$kv" --addr "127.0.0.1:$port" --procs 2 --store "$store" &
  pids+=($!)
  server_pids+=($!)
  names+=("goro-kv/$store")
  ports+=("$port")
  port=$((port + 1))
done
for i in "${!names[@]}"; do
  wait_port "${ports[$i]}"
  smoke "${ports[$i]}"
done
for rep in $(seq "$REPS"); do
  echo "== rep $rep"
  for p in 1 16; do
    for i in "${!names[@]}"; do
      bench "${names[$i]}" "${ports[$i]}" "${server_pids[$i]}" "$p"
    done
  done
done
for i in "${!names[@]}"; do
  [ "$i" -eq 0 ] && continue
  stop_kv "${server_pids[$i]}"
done

echo
echo "redis-benchmark -t set,get -n $N -c 50, best of $REPS (requests per second;" \
     "x redis: ratio to redis-server at -P 1 / -P 16)"
printf '%-18s %-4s %12s %12s %10s\n' server test "-P 1" "-P 16" "x redis"
for name in "${names[@]}"; do
  for t in SET GET; do
    printf '%-18s %-4s %12s %12s %10s\n' "$name" "$t" "${rps[$name,$t,1]}" "${rps[$name,$t,16]}" \
      "$(awk -v a="${rps[$name,$t,1]}" -v b="${rps[redis-server,$t,1]}" \
            -v c="${rps[$name,$t,16]}" -v d="${rps[redis-server,$t,16]}" \
            'BEGIN {printf "%.2f/%.2f", a / b, c / d}')"
  done
done
echo
echo "CPU-µs per request (all reps): the server's, and redis-benchmark's own"
printf '%-18s %14s %14s %14s %16s\n' server "server -P 1" "server -P 16" "bench -P 1" "bench CPU -P 1"
for name in "${names[@]}"; do
  printf '%-18s %14s %14s %14s %15s%%\n' "$name" \
    "$(awk -v t="${srv[$name,1]}" -v k="$TCK" -v n="$N" -v r="$REPS" 'BEGIN {printf "%.2f", t / k * 1e6 / (2 * n * r)}')" \
    "$(awk -v t="${srv[$name,16]}" -v k="$TCK" -v n="$N" -v r="$REPS" 'BEGIN {printf "%.2f", t / k * 1e6 / (2 * n * r)}')" \
    "$(awk -v c="${cpu[$name,1]}" -v n="$N" -v r="$REPS" 'BEGIN {printf "%.2f", c * 1e6 / (2 * n * r)}')" \
    "$(awk -v c="${cpu[$name,1]}" -v w="${wall[$name,1]}" 'BEGIN {printf "%.0f", (w > 0 ? 100 * c / w : 0)}')"
done
echo "(redis-benchmark is single-threaded: at -P 1 it keeps one of the 2 cores busy," \
     "so goro's 2 Ps share the other (with the netpoller thread under io_uring)." \
     "'bench CPU' is redis-benchmark's CPU time over its wall time: below 100 % it" \
     "waited for replies or for a core.)"
