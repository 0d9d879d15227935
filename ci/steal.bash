# Sourced by ci/load.sh and ci/kv.sh: how much of the machine's CPU time the
# hypervisor stole during a run (/proc/stat). On a shared VM a run with steal
# is a disturbed run.

# machine_ticks: all CPUs' time (user through steal) and the steal part.
machine_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9}' /proc/stat; }

# steal_since "TOTAL STEAL" (a machine_ticks reading): percent of the
# machine's CPU time stolen since.
steal_since() {
  machine_ticks | awk -v a="$1" '{split(a, x, " "); d = $1 - x[1]; printf "%.1f", (d > 0 ? 100 * ($2 - x[2]) / d : 0)}'
}
