// Go 1.19 reference for goro's channel and timer benchmarks (issue 3), run
// beside goro's in ci/bench.sh. Prints FIGURE lines like the yardstick's.
//
//	chanbench buffered PROCS   1 producer -> 1 consumer over a chan of cap 128: ns per value
//	chanbench sleepers PROCS   100,000 goroutines each sleep 1 ms ten times: wall ms
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func figure(bench string, value float64, unit string, runs []float64) {
	fmt.Printf("FIGURE peer=go bench=%s value=%.1f unit=%s runs=%v\n", bench, value, unit, runs)
}

func buffered(n int) float64 {
	c := make(chan uint64, 128)
	done := make(chan uint64)
	start := time.Now()
	go func() {
		var sum uint64
		for v := range c {
			sum += v
		}
		done <- sum
	}()
	for i := 0; i < n; i++ {
		c <- uint64(i)
	}
	close(c)
	sum := <-done
	elapsed := time.Since(start)
	if sum != uint64(n)*uint64(n-1)/2 {
		panic("bad sum")
	}
	return float64(elapsed.Nanoseconds()) / float64(n)
}

func sleepers(n, rounds int) float64 {
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			for r := 0; r < rounds; r++ {
				time.Sleep(time.Millisecond)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(start).Microseconds()) / 1000.0
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: chanbench buffered|sleepers PROCS")
		os.Exit(2)
	}
	procs, err := strconv.Atoi(os.Args[2])
	if err != nil || procs < 1 {
		fmt.Fprintln(os.Stderr, "PROCS must be a positive integer")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(procs)
	var runs []float64
	switch os.Args[1] {
	case "buffered":
		buffered(1_000_000)
		for i := 0; i < 5; i++ {
			runs = append(runs, buffered(5_000_000))
		}
		figure(fmt.Sprintf("buffered_128/%dp", procs), median(runs), "ns/value", runs)
	case "sleepers":
		sleepers(100_000, 1)
		for i := 0; i < 3; i++ {
			runs = append(runs, sleepers(100_000, 10))
		}
		figure(fmt.Sprintf("sleepers_100k_x10/%dp", procs), median(runs), "ms", runs)
	default:
		fmt.Fprintln(os.Stderr, "unknown benchmark", os.Args[1])
		os.Exit(2)
	}
}
