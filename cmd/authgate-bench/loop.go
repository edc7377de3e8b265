package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loopResult is what a closed-loop Go driver measured.
type loopResult struct {
	ops       int64
	errors    int64
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration // of successful operations, sorted
}

// runLoop runs each of ops in its own goroutine, back to back, until d has
// passed, and times every call. An operation that fails counts as an error
// and is not timed; the loop goes on. An operation under way when d passes
// is let finish rather than cut off: a request aborted during a refresh
// would leave its client holding a cookie whose refresh token the IdP has
// already rotated, an error in the next run that no real browser would
// see so often.
func runLoop(ctx context.Context, d time.Duration, ops []func(context.Context) error) loopResult {
	deadline := time.Now().Add(d)
	type worker struct {
		lat      []time.Duration
		errors   int64
		firstErr error
	}
	workers := make([]worker, len(ops))
	start := time.Now()
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() {
			w := &workers[i]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				err := op(ctx)
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted: neither a result nor an error
					}
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := loopResult{elapsed: time.Since(start)}
	for _, w := range workers {
		r.latencies = append(r.latencies, w.lat...)
		r.errors += w.errors
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	slices.Sort(r.latencies)
	r.ops = int64(len(r.latencies))
	return r
}

// cookieRequester returns an operation that GETs url with the next
// session of sessions (round robin), expects 200 and keeps any cookie the
// answer sets, as a browser does. The sessions belong to this operation
// alone: one operation per worker.
func cookieRequester(client *http.Client, url string, sessions []cookieSet) func(context.Context) error {
	next := 0
	return func(ctx context.Context) error {
		cookies := sessions[next]
		next = (next + 1) % len(sessions)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Cookie", cookies.header(benchCookieName))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d, want 200", resp.StatusCode)
		}
		cookies.update(resp, time.Now())
		return nil
	}
}
