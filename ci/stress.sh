#!/usr/bin/env bash
# The #[ignore]d stress tests, in release mode. Raises vm.max_map_count for the
# million-goroutine test (each goroutine stack costs 2 mappings) and restores
# it on exit. Needs root for the sysctl; bounded by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
want=2200000
old=$(sysctl -n vm.max_map_count)
if [ "$old" -lt "$want" ]; then
  sysctl -qw vm.max_map_count=$want || { echo "cannot raise vm.max_map_count (need root)" >&2; exit 2; }
  trap 'sysctl -qw vm.max_map_count='"$old" EXIT
fi
# One test at a time: they are sized for the whole machine.
cargo test --release -- --ignored --test-threads=1
