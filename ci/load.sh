#!/usr/bin/env bash
# Load tests, goro beside Go 1.19, in ONE run on loopback, bounded in time:
#   - echo, 64 B payload, 100 and 10,000 connections: Go's loadgen (the
#     yardstick's client) against goro's echo and against Go's echo, plus
#     goro's own echo_load against goro's echo;
#   - wrk -t1 -c100 and -c1000 against goro's http_hello and Go's net/http;
#   - the same echo load against ci/floor/echo_floor.c, a one-thread C epoll
#     loop making one read and one write per round trip: the kernel's floor
#     for any readiness-based server (needs a C compiler; skipped without);
#   - the same wrk load against ci/floor/http_floor.c, a one-thread C epoll
#     loop answering with canned bytes: the most requests per second wrk -t1
#     drives on this machine, so the ceiling for goro's ratio against Go;
#   - the same echo and wrk loads against the peers in ci/peers: tokio and
#     may servers written like goro's examples (same buffers, and the same
#     HTTP framing file). DESIGN §6's goal is to beat them in the same run.
#     Building them fetches tokio and may from crates.io; PEERS=0 skips them,
#     and a failed build skips them with a note.
# Prints throughput, p99 latency and the server's CPU-µs per request or round
# trip (user+sys of the server process from /proc/PID/stat over the run), and
# the share of the machine's CPU time the hypervisor stole during each run
# (/proc/stat): on a shared VM a run with steal is a disturbed run.
# Usage: bash ci/load.sh            (DUR=seconds per run, default 5; REPS=1;
#                                    PEERS=0 skips tokio and may)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
yard="$root/../shared/bench/yardstick.sh"
out=${YARDSTICK_OUT:-$HOME/.cache/goro-yardstick}
DUR=${DUR:-5}
REPS=${REPS:-1}
PEERS=${PEERS:-1}
TCK=$(getconf CLK_TCK)

# wrk and Go come from apt when missing (the yardstick's build does both).
command -v wrk >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q wrk >/dev/null; }
[ -x "$out/loadgen" ] && [ -x "$out/go-echo" ] && [ -x "$out/go-http" ] || bash "$yard" build
cargo build --release -q --example echo --example echo_load --example http_hello
bin="$root/target/release/examples"
floor=""
http_floor=""
if command -v cc >/dev/null; then
  floor="$root/target/echo_floor"
  cc -O2 -o "$floor" ci/floor/echo_floor.c
  http_floor="$root/target/http_floor"
  cc -O2 -o "$http_floor" ci/floor/http_floor.c
else
  echo "note: no C compiler (cc), so the floor rows are skipped"
fi
peers=""
if [ "$PEERS" != 0 ]; then
  if CARGO_TARGET_DIR="$root/target/peers" cargo build --release -q --manifest-path ci/peers/Cargo.toml; then
    peers="$root/target/peers/release"
  else
    echo "note: ci/peers did not build (crates.io unreachable?), so the tokio and may rows are skipped"
  fi
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# cpu_ticks PID: utime+stime of every thread of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# machine_ticks and steal_since.
. ci/steal.bash

# start ADDR CMD...: runs a server in the background, waits until ADDR
# accepts (at most 10 s); sets $server.
start() {
  local addr=$1; shift
  "$@" >/dev/null 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server $* did not start on $addr"; exit 1
}

# stop PID: SIGTERM, then SIGKILL after 5 s.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

results=()
record() { results+=("$(printf '%-34s %12s %10s %12s %8s' "$1" "$2" "$3" "$4" "$5")"); }

echo_loadgen() { # NAME ADDR CONNS (server already running as $server)
  local line rt rts p99 cpu machine
  machine=$(machine_ticks)
  line=$(timeout $((DUR + 90)) "$out/loadgen" -addr "$2" -conns "$3" -size 64 \
           -duration "${DUR}s" -server-pid "$server" -label "$1")
  echo "  $line"
  rt=$(echo "$line" | field rt); rts=$(echo "$line" | field rt_per_s)
  p99=$(echo "$line" | field p99_us); cpu=$(echo "$line" | field server_cpu_s)
  last_cpu=$(awk -v c="$cpu" -v r="$rt" 'BEGIN {printf "%.2f", (r > 0 ? c * 1e6 / r : 0)}')
  record "$1" "$rts" "$p99" "$last_cpu" "$(steal_since "$machine")"
}

ratios=()
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo_goro_load() { # NAME ADDR CONNS
  local before after line rt rts p99 machine
  machine=$(machine_ticks)
  before=$(cpu_ticks "$server")
  line=$(timeout $((DUR + 90)) "$bin/echo_load" --addr "$2" --conns "$3" --size 64 --duration "$DUR")
  after=$(cpu_ticks "$server")
  echo "  $line"
  rt=$(echo "$line" | field round_trips); rts=$(echo "$line" | field rt/s)
  p99=$(echo "$line" | field p99 | tr -d us)
  # Includes the connect phase: an upper bound on the server's CPU per rt.
  record "$1" "$rts" "$p99" "$(awk -v t=$((after - before)) -v k="$TCK" -v r="$rt" 'BEGIN {printf "%.2f", (r > 0 ? t / k * 1e6 / r : 0)}')" \
    "$(steal_since "$machine")"
}

wrk_run() { # NAME URL CONNS
  local before after text reqs total p99 machine
  machine=$(machine_ticks)
  before=$(cpu_ticks "$server")
  text=$(timeout $((DUR + 30)) wrk -t1 -c"$3" -d"${DUR}s" --latency "$2")
  after=$(cpu_ticks "$server")
  reqs=$(echo "$text" | awk '/Requests\/sec/ {print $2}')
  total=$(echo "$text" | awk '/requests in/ {print $1}')
  last_reqs=$reqs
  p99=$(echo "$text" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1e6}}')
  echo "$text" | grep -E "Non-2xx|Socket errors" | sed 's/^/  /' || true
  record "$1" "$reqs" "$p99" "$(awk -v t=$((after - before)) -v k="$TCK" -v r="$total" 'BEGIN {printf "%.2f", (r > 0 ? t / k * 1e6 / r : 0)}')" \
    "$(steal_since "$machine")"
}

# echo_peer NAME PORT CONNS CMD...: the echo row of one more server;
# appends its CPU ratio against Go's to $line.
echo_peer() {
  start "127.0.0.1:$2" "${@:4}"
  echo_loadgen "echo $(printf '%-6s' "$1") c=$3 (Go loadgen)" "127.0.0.1:$2" "$3"
  stop "$server"
  line="$line, $1 $(ratio "$last_cpu" "$go_cpu")"
}

# wrk_peer NAME PORT CONNS CMD...: the wrk row of one more server; appends
# its requests per second against Go's to $line.
wrk_peer() {
  start "127.0.0.1:$2" "${@:4}"
  wrk_run "http $(printf '%-6s' "$1") wrk -c$3" "http://127.0.0.1:$2/" "$3"
  stop "$server"
  line="$line, $1 $(ratio "$last_reqs" "$go_reqs")"
}

for rep in $(seq "$REPS"); do
  echo "== rep $rep: echo, 64 B, ${DUR}s per run"
  for conns in 100 10000; do
    start 127.0.0.1:17101 "$bin/echo" --addr 127.0.0.1:17101 --procs 2
    echo_loadgen "echo goro   c=$conns (Go loadgen)" 127.0.0.1:17101 "$conns"
    goro_cpu=$last_cpu
    echo_goro_load "echo goro   c=$conns (echo_load)" 127.0.0.1:17101 "$conns"
    stop "$server"
    start 127.0.0.1:17102 env GOMAXPROCS=2 "$out/go-echo" -addr 127.0.0.1:17102
    echo_loadgen "echo Go     c=$conns (Go loadgen)" 127.0.0.1:17102 "$conns"
    go_cpu=$last_cpu
    stop "$server"
    line="rep $rep, echo c=$conns, CPU-µs per round trip against Go's: goro $(ratio "$goro_cpu" "$go_cpu")"
    [ -z "$floor" ] || echo_peer floor 17103 "$conns" "$floor" 17103
    if [ -n "$peers" ]; then
      echo_peer tokio 17104 "$conns" "$peers/tokio_echo" --addr 127.0.0.1:17104 --procs 2
      echo_peer may 17105 "$conns" "$peers/may_echo" --addr 127.0.0.1:17105 --procs 2
    fi
    ratios+=("$line")
  done
  echo "== rep $rep: wrk -t1, ${DUR}s per run"
  for conns in 100 1000; do
    start 127.0.0.1:18101 "$bin/http_hello" --addr 127.0.0.1:18101 --procs 2
    wrk_run "http goro   wrk -c$conns" http://127.0.0.1:18101/ "$conns"
    stop "$server"
    goro_reqs=$last_reqs
    start 127.0.0.1:18102 env GOMAXPROCS=2 "$out/go-http" -addr 127.0.0.1:18102
    wrk_run "http Go     wrk -c$conns" http://127.0.0.1:18102/ "$conns"
    stop "$server"
    go_reqs=$last_reqs
    line="rep $rep, wrk -c$conns, requests per second against Go's: goro $(ratio "$goro_reqs" "$go_reqs")"
    [ -z "$http_floor" ] || wrk_peer floor 18103 "$conns" "$http_floor" 18103
    if [ -n "$peers" ]; then
      wrk_peer tokio 18104 "$conns" "$peers/tokio_http" --addr 127.0.0.1:18104 --procs 2
      wrk_peer may 18105 "$conns" "$peers/may_http" --addr 127.0.0.1:18105 --procs 2
    fi
    ratios+=("$line")
  done
done

echo
printf '%-34s %12s %10s %12s %8s\n' "run" "per second" "p99 µs" "server CPU-µs" "steal %"
printf '%s\n' "${results[@]}"
echo
printf '%s\n' "${ratios[@]}"
