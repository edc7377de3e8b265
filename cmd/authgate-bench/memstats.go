package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// memStats is the part of runtime.MemStats that explains a Go process's
// anonymous memory, as net/http/pprof prints it at the end of
// /debug/pprof/heap?debug=1 ("# HeapInuse = 123" lines).
type memStats struct {
	heapInuse   int64 // spans holding objects (live and not yet swept garbage)
	heapIdle    int64 // spans without objects, not yet returned to the OS
	stackInuse  int64 // goroutine stacks
	gcSys       int64 // GC metadata
	otherSys    int64 // the rest of the runtime's own memory (MSpanSys, MCacheSys, BuckHashSys, OtherSys)
	nextGC      int64 // the heap size that triggers the next GC
	numGC       int64
	heapObjects int64
}

// fetchMemStats reads authgate's MemStats from its pprof heap endpoint.
func fetchMemStats(ctx context.Context, url string) (memStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return memStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return memStats{}, fmt.Errorf("fetch heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return memStats{}, fmt.Errorf("fetch heap profile: %s", resp.Status)
	}
	return parseMemStats(resp.Body)
}

// parseMemStats reads the "# Name = value" lines of a debug=1 heap profile.
func parseMemStats(r io.Reader) (memStats, error) {
	v := map[string]int64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		// "Stack = 1 / 2", "MSpan = 1 / 2", "MCache = 1 / 2" are in use / obtained.
		inuse, sys, pair := strings.Cut(value, " / ")
		if n, err := strconv.ParseInt(inuse, 10, 64); err == nil {
			v[name] = n
			if pair {
				if n, err := strconv.ParseInt(sys, 10, 64); err == nil {
					v[name+"Sys"] = n
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return memStats{}, fmt.Errorf("read heap profile: %w", err)
	}
	if _, ok := v["HeapInuse"]; !ok {
		return memStats{}, fmt.Errorf("read heap profile: no MemStats in it")
	}
	return memStats{
		heapInuse:   v["HeapInuse"],
		heapIdle:    v["HeapIdle"] - v["HeapReleased"],
		stackInuse:  v["Stack"],
		gcSys:       v["GCSys"],
		otherSys:    v["MSpanSys"] + v["MCacheSys"] + v["BuckHashSys"] + v["OtherSys"],
		nextGC:      v["NextGC"],
		numGC:       v["NumGC"],
		heapObjects: v["HeapObjects"],
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
