// The Go peer of goro's benches/mutex.rs: 4 goroutines each lock a
// sync.Mutex, increment a shared counter and unlock, N times, at
// GOMAXPROCS=2. Prints the median over REPS runs (default 7) of the time
// per lock/unlock pair as one FIGURE line (see ci/bench.sh):
//
//	FIGURE peer=go bench=mutex_4g_2p value=<ns per lock> unit=ns runs=...
//
// Usage: mutex [n per goroutine, default 1000000]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const goroutines = 4

func main() {
	runtime.GOMAXPROCS(2)
	n := 1000000
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil && v > 0 {
			n = v
		}
	}
	reps := 7
	if v, err := strconv.Atoi(os.Getenv("REPS")); err == nil && v > 0 {
		reps = v
	}
	runs := make([]float64, 0, reps)
	for r := 0; r < reps; r++ {
		runs = append(runs, once(n))
	}
	sorted := append([]float64(nil), runs...)
	sort.Float64s(sorted)
	parts := make([]string, len(runs))
	for i, x := range runs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	fmt.Printf("FIGURE peer=go bench=mutex_4g_2p value=%.1f unit=ns runs=%s\n",
		sorted[len(sorted)/2], strings.Join(parts, ","))
}

// once runs one round and returns nanoseconds per lock/unlock pair.
func once(n int) float64 {
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(goroutines)
	for g := 0; g < goroutines; g++ {
		go func() {
			<-start
			for i := 0; i < n; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if counter != goroutines*n {
		panic("mutex: lost updates")
	}
	return float64(elapsed.Nanoseconds()) / float64(goroutines*n)
}
