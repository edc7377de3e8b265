package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// memStats is the part of runtime.MemStats that explains a Go process's
// anonymous memory, as the Prometheus Go collector exports it on
// authgate's /metrics (go_memstats_*): read from the endpoint an operator
// scrapes anyway, so that measuring touches no code the proxy would not.
type memStats struct {
	heapInuse  int64 // spans holding objects (live and not yet swept garbage)
	heapIdle   int64 // spans without objects, not yet returned to the OS
	stackInuse int64 // goroutine stacks
	gcSys      int64 // GC metadata
	otherSys   int64 // the rest of the runtime's own memory (MSpanSys, MCacheSys, BuckHashSys, OtherSys)
	nextGC     int64 // the heap size that triggers the next GC
	numGC      int64
}

// memStatsMetrics are the samples fetchMemStats reads.
var memStatsMetrics = []string{
	"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes",
	"go_memstats_stack_inuse_bytes", "go_memstats_gc_sys_bytes", "go_memstats_other_sys_bytes",
	"go_memstats_mspan_sys_bytes", "go_memstats_mcache_sys_bytes", "go_memstats_buck_hash_sys_bytes",
	"go_memstats_next_gc_bytes", "go_gc_duration_seconds_count",
}

// fetchMemStats reads authgate's MemStats from its /metrics.
func fetchMemStats(ctx context.Context, url string) (memStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := scrapeMetrics(ctx, url, memStatsMetrics...)
	if err != nil {
		return memStats{}, fmt.Errorf("read memory statistics: %w", err)
	}
	return memStatsFrom(m)
}

// memStatsFrom converts the scraped samples.
func memStatsFrom(m map[string]float64) (memStats, error) {
	for _, name := range memStatsMetrics {
		if _, ok := m[name]; !ok {
			return memStats{}, fmt.Errorf("read memory statistics: no %s", name)
		}
	}
	v := func(name string) int64 { return int64(m[name]) }
	return memStats{
		heapInuse:  v("go_memstats_heap_inuse_bytes"),
		heapIdle:   v("go_memstats_heap_idle_bytes") - v("go_memstats_heap_released_bytes"),
		stackInuse: v("go_memstats_stack_inuse_bytes"),
		gcSys:      v("go_memstats_gc_sys_bytes"),
		otherSys:   v("go_memstats_other_sys_bytes") + v("go_memstats_mspan_sys_bytes") + v("go_memstats_mcache_sys_bytes") + v("go_memstats_buck_hash_sys_bytes"),
		nextGC:     v("go_memstats_next_gc_bytes"),
		numGC:      v("go_gc_duration_seconds_count"),
	}, nil
}

// saveURL writes what url answers to the file name.
func saveURL(ctx context.Context, url, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(name, body, 0o644)
}
