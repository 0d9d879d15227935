// Go 1.19 reference for goro's issue-5 figures (benches/preempt.rs), run
// beside goro's in ci/bench.sh. Each figure is measured the way goro's bench
// measures it; its doc comment has the full method.
//
//	preempt [idle] [wake] [syscall] [cost]     (default: all, in that order)
//
//	idle     process CPU (µs per second) while main blocks 2 s in nanosleep,
//	         with nothing else (sysmon_idle_cpu) and with one goroutine in
//	         time.Sleep(2.2 s) (sysmon_idle_cpu_timer); default GOMAXPROCS
//	wake     GOMAXPROCS=1: lateness of 100 × time.Sleep(1 ms) beside a
//	         call-free spinning goroutine: p50 and max, ms
//	syscall  GOMAXPROCS=1: a counter's rate while main blocks 200 ms in
//	         syscall.Nanosleep (entersyscall: Go's only kind of handoff), as
//	         % of its rate while main parks in time.Sleep; printed under
//	         goro's two names (blocking / auto), from separate
//	         runs; median of 5 each
//	cost     GOMAXPROCS=1: two spinners, 2 s, Go's fixed 10 ms slice; the
//	         median gap between one spinner's last TSC stamp and the other's
//	         first after a preemption (a hole of >100 µs in the other's own
//	         stamps), minus one stamp interval, µs
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// cputicks is RDTSC (runtime/asm_amd64.s, NOSPLIT): a call that is no
// cooperative preemption point, so the spinners are preempted by signal only.
//
//go:linkname cputicks runtime.cputicks
func cputicks() int64

var sink uint64

func figure(bench string, value float64, unit string, extra string) {
	fmt.Printf("FIGURE peer=go bench=%s value=%.2f unit=%s %s\n", bench, value, unit, extra)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// ---------------------------------------------------------------- idle

func processCPUNanos() int64 {
	var ts syscall.Timespec
	const clockProcessCPUTimeID = 2
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return ts.Nano()
}

// cpuWhileBlocked: µs of process CPU per second while main blocks in a
// nanosleep syscall (outside the scheduler, as goro's main thread sleeps
// outside its runtime).
func cpuWhileBlocked(window time.Duration) float64 {
	c0, t0 := processCPUNanos(), time.Now()
	ts := syscall.NsecToTimespec(window.Nanoseconds())
	syscall.Nanosleep(&ts, nil)
	c1, t1 := processCPUNanos(), time.Now()
	return float64(c1-c0) / 1e3 / t1.Sub(t0).Seconds()
}

func idle() {
	window, settle := 2*time.Second, 100*time.Millisecond
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	time.Sleep(settle)
	procs := runtime.GOMAXPROCS(0)
	figure("sysmon_idle_cpu", cpuWhileBlocked(window), "us_cpu_per_s",
		fmt.Sprintf("procs=%d parked=none main=syscall.Nanosleep", procs))

	slept := make(chan struct{})
	go func() { time.Sleep(window + 2*settle); close(slept) }()
	time.Sleep(settle)
	v := cpuWhileBlocked(window)
	<-slept
	figure("sysmon_idle_cpu_timer", v, "us_cpu_per_s",
		fmt.Sprintf("procs=%d parked=one_time.Sleep(2.2s) main=syscall.Nanosleep", procs))
}

// ---------------------------------------------------------------- wake

// itersPerSec calibrates the spin loop, for the spinner's safety cap.
func itersPerSec() float64 {
	x := uint64(1)
	const probe = 100_000_000
	t0 := time.Now()
	for i := 0; i < probe; i++ {
		x *= 3
	}
	sink += x
	return probe / time.Since(t0).Seconds()
}

func wake() {
	runtime.GOMAXPROCS(1)
	// Safety net instead of goro's watchdog thread: stop after ~10 s worth
	// of iterations even if preemption never comes.
	limit := uint64(10 * itersPerSec())
	var stop uint32
	spun := make(chan uint64)
	go func() {
		x := uint64(1)
		n := uint64(0)
		for atomic.LoadUint32(&stop) == 0 && n < limit {
			x *= 3
			n++
		}
		sink += x
		spun <- n
	}()
	lates := make([]float64, 0, 100)
	for i := 0; i < 100; i++ {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		lates = append(lates, float64(time.Since(t0).Nanoseconds())/1e6-1)
	}
	atomic.StoreUint32(&stop, 1)
	n := <-spun
	sorted := append([]float64(nil), lates...)
	sort.Float64s(sorted)
	extra := fmt.Sprintf("procs=1 slice=10ms p99=%.2f spin_iters=%d", sorted[98], n)
	if n >= limit {
		extra += " cap=reached"
	}
	if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		extra += " async_preempt=off"
	}
	figure("preempt_wake_p50", sorted[49], "ms", extra)
	figure("preempt_wake_max", sorted[99], "ms", extra)
}

// ---------------------------------------------------------------- syscall

// syscallOnce is the yardstick's benchSyscall: progress %, and a note.
func syscallOnce() (float64, string) {
	var counter uint64
	var stop uint32
	finished := make(chan struct{})
	go func() {
		for atomic.LoadUint32(&stop) == 0 {
			atomic.AddUint64(&counter, 1)
		}
		close(finished)
	}()
	time.Sleep(20 * time.Millisecond)
	c0, t0 := atomic.LoadUint64(&counter), time.Now()
	time.Sleep(200 * time.Millisecond)
	c1, t1 := atomic.LoadUint64(&counter), time.Now()
	free := float64(c1-c0) / t1.Sub(t0).Seconds()

	ts := syscall.Timespec{Sec: 0, Nsec: 200_000_000}
	c2, t2 := atomic.LoadUint64(&counter), time.Now()
	syscall.Nanosleep(&ts, nil)
	c3, t3 := atomic.LoadUint64(&counter), time.Now()
	atomic.StoreUint32(&stop, 1)
	<-finished
	during := float64(c3-c2) / t3.Sub(t2).Seconds()
	pct := 100 * during / free
	return pct, fmt.Sprintf("%.1f%%:block_ms=%.1f:free_ms=%.1f", pct,
		float64(t3.Sub(t2).Microseconds())/1e3, float64(t1.Sub(t0).Microseconds())/1e3)
}

func syscallProgress() {
	runtime.GOMAXPROCS(1)
	names := []string{"preempt_syscall_blocking", "preempt_syscall_auto"}
	pcts := [2][]float64{}
	notes := [2][]string{}
	for r := 0; r < 5; r++ {
		for i := range names {
			p, n := syscallOnce()
			pcts[i] = append(pcts[i], p)
			notes[i] = append(notes[i], n)
		}
	}
	for i, name := range names {
		figure(name, median(pcts[i]), "pct_of_free_rate",
			"procs=1 call=syscall.Nanosleep runs="+strings.Join(notes[i], ","))
	}
}

// ---------------------------------------------------------------- cost

const chunk = 256
const holeUs = 100.0

type stamps struct {
	stop uint32
	last [2]int64
}

// stampedSpinner: see benches/preempt.rs (stamped_spinner); the same rule.
func stampedSpinner(s *stamps, me int, hole int64, out chan<- []int64) {
	other := &s.last[1-me]
	gaps := make([]int64, 0, 8192)
	x := uint64(1)
	mine := cputicks()
	var candGap, candSeen int64
	cand := false
	for atomic.LoadUint32(&s.stop) == 0 {
		for j := 0; j < chunk; j++ {
			x *= 3
		}
		now := cputicks()
		theirs := atomic.LoadInt64(other)
		if cand {
			if theirs == candSeen && len(gaps) < cap(gaps) {
				gaps = append(gaps, candGap)
			}
			cand = false
		}
		if now-mine > hole && theirs > mine {
			cand, candGap, candSeen = true, now-theirs, theirs
		}
		atomic.StoreInt64(&s.last[me], now)
		mine = now
	}
	sink += x
	out <- gaps
}

func cost() {
	runtime.GOMAXPROCS(1)
	wall := 2 * time.Second
	c0, t0 := cputicks(), time.Now()
	x := uint64(1)
	for i := 0; i < 20_000*chunk; i++ {
		x *= 3
	}
	sink += x
	c1, el := cputicks(), time.Since(t0)
	ticksPerUs := float64(c1-c0) / (el.Seconds() * 1e6)
	chunkUs := el.Seconds() * 1e6 / 20_000

	s := &stamps{}
	hole := int64(holeUs * ticksPerUs)
	out := make(chan []int64, 2)
	go stampedSpinner(s, 0, hole, out)
	go stampedSpinner(s, 1, hole, out)
	time.Sleep(wall)
	atomic.StoreUint32(&s.stop, 1)
	var gaps []float64
	for i := 0; i < 2; i++ {
		for _, t := range <-out {
			gaps = append(gaps, float64(t)/ticksPerUs)
		}
	}
	if len(gaps) == 0 {
		figure("preempt_cost", 0, "us", "procs=1 slice=10ms preemptions=0")
		return
	}
	sort.Float64s(gaps)
	mean := 0.0
	for _, g := range gaps {
		mean += g
	}
	mean /= float64(len(gaps))
	med := gaps[len(gaps)/2]
	figure("preempt_cost", med-chunkUs, "us", fmt.Sprintf(
		"procs=1 slice=10ms preemptions=%d per_s=%.0f gap_p10=%.2f gap_median=%.2f gap_mean=%.2f gap_p90=%.2f chunk_us=%.3f",
		len(gaps), float64(len(gaps))/wall.Seconds(), gaps[len(gaps)/10], med, mean, gaps[len(gaps)*9/10], chunkUs))
}

func main() {
	asked := os.Args[1:]
	want := func(name string) bool {
		if len(asked) == 0 {
			return true
		}
		for _, a := range asked {
			if a == name {
				return true
			}
		}
		return false
	}
	if want("idle") {
		idle()
	}
	if want("wake") {
		wake()
	}
	if want("syscall") {
		syscallProgress()
	}
	if want("cost") {
		cost()
	}
}
