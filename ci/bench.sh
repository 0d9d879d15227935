#!/usr/bin/env bash
# goro's scheduler benchmarks beside Go 1.19's, in ONE run (DESIGN §6: targets
# are ratios against Go measured on the same machine at the same time).
#
#   bash ci/bench.sh            all figures
#   QUICK=1 bash ci/bench.sh    shorter criterion runs
#
# Prints FIGURE lines for both peers. Bounded: criterion runs ~5 s a bench, Go's
# micro benchmarks a few seconds each. Needs ../shared/bench (the yardstick),
# which installs golang-go through apt on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
yard="$here/../shared/bench/yardstick.sh"
[ -x "$yard" ] || yard="$here/shared/bench/yardstick.sh"
[ -f "$yard" ] || { echo "no yardstick at ../shared/bench" >&2; exit 2; }

measure=3; warm=1
[ -n "${QUICK:-}" ] && { measure=1; warm=1; }

cd "$here"
cargo bench --no-run --bench sched --bench chan --bench idle_rss --bench mutex --bench sleepers --bench preempt --bench alloc >/dev/null 2>&1
# 100,000 sleeping goroutines need 200,000 stack mappings: raise
# vm.max_map_count for this run if we can (root), and restore it on exit.
sleepers=100000
old_maps=$(sysctl -n vm.max_map_count)
if [ "$old_maps" -lt 400000 ]; then
  if sysctl -qw vm.max_map_count=400000 2>/dev/null; then
    trap 'sysctl -qw vm.max_map_count='"$old_maps" EXIT
  else
    sleepers=25000
    echo "note: cannot raise vm.max_map_count; sleepers measured at $sleepers (goro only)" >&2
  fi
fi

echo "== go 1.19 =="
bash "$yard" build >/dev/null
bash "$yard" micro yield 1
BATCH=1000 bash "$yard" micro spawn 1
BATCH=1000 bash "$yard" micro spawn 2
bash "$yard" micro idle 1
bash "$yard" micro pingpong 1
bash "$yard" micro pingpong 2
# Buffered channel (cap 128) throughput and 100k sleepers (ci/go/chanbench).
(cd "$here/ci/go/chanbench" && go build -o "$here/target/go-chanbench" .)
"$here/target/go-chanbench" buffered 1
"$here/target/go-chanbench" buffered 2
"$here/target/go-chanbench" sleepers 1
"$here/target/go-chanbench" sleepers 2
# sync.Mutex: 4 goroutines x 1M lock/unlock at GOMAXPROCS=2 (ci/go/mutex).
(cd "$here/ci/go/mutex" && go build -o "$here/target/go-mutex" .)
"$here/target/go-mutex"
# Issue 5: wake lateness beside a spinner, progress during a blocking
# syscall, cost of a preemption, idle CPU (ci/go/preempt; ~12 s).
(cd "$here/ci/go/preempt" && go build -o "$here/target/go-preempt" .)
"$here/target/go-preempt"

echo "== goro =="
# criterion's "time: [low mid high]" → FIGURE lines with the median estimate.
for bench in sched chan mutex alloc; do
cargo bench --bench "$bench" -- --measurement-time "$measure" --warm-up-time "$warm" 2>/dev/null |
  awk '/time:/ { name=$1; gsub(/[\[\]]/, ""); for (i=1;i<=NF;i++) if ($i=="time:") { mid=$(i+3); unit=$(i+4) }
        printf "FIGURE peer=goro bench=%s value=%s unit=%s/iter\n", name, mid, unit }'
done
cargo bench --bench idle_rss -- 30000 2>/dev/null | grep FIGURE
cargo bench --bench sleepers -- 1 "$sleepers" 2>/dev/null | grep FIGURE
cargo bench --bench sleepers -- 2 "$sleepers" 2>/dev/null | grep FIGURE
cargo bench --bench preempt 2>/dev/null | grep FIGURE
