// Package secretfile re-reads the files behind authgate's …_FILE variables
// (secrets and CA bundles) while it runs, so that a rotated Kubernetes
// Secret takes effect without a restart.
//
// It polls: every Interval (1 s by default) it reads each file and, when
// the bytes differ from the last read, hands them to the file's apply
// function. Polling reads through symlinks, so it sees the kubelet's
// atomic update (a new timestamped directory, then the "..data" symlink
// renamed over) like any other write, needs no inotify watch per
// directory, and costs a few small reads per second. A change applies
// within one Interval of the kubelet's swap (which itself follows the
// Secret's update by up to the kubelet's sync period, about a minute).
//
// A value that apply rejects (or a file that cannot be read) keeps the last
// good value: the failure is logged once per distinct content and reported
// to OnReload, and the file is applied again as soon as it changes.
package secretfile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often files are read when Options.Interval is zero.
const DefaultInterval = time.Second

// Options configures a Watcher. The zero value polls every DefaultInterval
// and logs to slog.Default().
type Options struct {
	// Interval between reads of every file; zero means DefaultInterval.
	Interval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnReload, when set, is called after each change of a file with its
	// name and apply's result (nil for a value now in use).
	OnReload func(name string, err error)
}

// Watcher polls a set of files. Add files, then Run it once. A Watcher is
// safe for concurrent use.
type Watcher struct {
	interval time.Duration
	log      *slog.Logger
	onReload func(string, error)

	mu    sync.Mutex
	files []*file
}

type file struct {
	name, path string
	apply      func([]byte) error
	last       []byte // the content last read, applied or not
}

// New returns a Watcher for o.
func New(o Options) *Watcher {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Watcher{interval: o.Interval, log: o.Logger, onReload: o.OnReload}
}

// Add reads path now, hands its content to apply and, if apply accepts it,
// watches the file from then on. name (the variable, such as
// AUTHGATE_COOKIE_SECRET_FILE) identifies the file in logs and OnReload.
// apply must not keep the slice, and must leave the value in use unchanged
// when it returns an error. Add returns the read or apply error.
func (w *Watcher) Add(name, path string, apply func([]byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: read: %w", name, err)
	}
	if err := apply(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w.mu.Lock()
	w.files = append(w.files, &file{name: name, path: path, apply: apply, last: b})
	w.mu.Unlock()
	return nil
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Check reads every file once and applies those that changed. Run calls
// it; tests may call it directly.
func (w *Watcher) Check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			// A missing file (a half-done manual swap) keeps the value;
			// report it once, not every second.
			if f.last != nil {
				f.last = nil
				w.failed(f, fmt.Errorf("read: %w", err))
			}
			continue
		}
		if f.last != nil && bytes.Equal(b, f.last) {
			continue
		}
		f.last = b
		if err := f.apply(b); err != nil {
			w.failed(f, err)
			continue
		}
		w.log.Info("secret file reloaded", "variable", f.name)
		if w.onReload != nil {
			w.onReload(f.name, nil)
		}
	}
}

func (w *Watcher) failed(f *file, err error) {
	// err comes from apply or the file system; neither quotes the content.
	w.log.Error("secret file changed but is not valid; keeping the last good value",
		"variable", f.name, "error", err.Error())
	if w.onReload != nil {
		w.onReload(f.name, err)
	}
}

// Value holds a value that is swapped atomically as its file changes. The
// zero Value holds the zero T until the first Store.
type Value[T any] struct {
	p atomic.Pointer[T]
}

// Load returns the current value.
func (v *Value[T]) Load() T {
	if p := v.p.Load(); p != nil {
		return *p
	}
	var zero T
	return zero
}

// Store makes x the current value.
func (v *Value[T]) Store(x T) { v.p.Store(&x) }
