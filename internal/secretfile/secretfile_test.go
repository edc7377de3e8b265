package secretfile_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/authgate/authgate/internal/secretfile"
	"github.com/authgate/authgate/internal/secretfile/secretfiletest"
)

type reloads struct {
	mu   sync.Mutex
	errs map[string][]error
}

func (r *reloads) record(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string][]error{}
	}
	r.errs[name] = append(r.errs[name], err)
}

func TestWatcherKubeletSwap(t *testing.T) {
	vol := secretfiletest.NewKubeletDir(t, map[string]string{"secret": "one", "other": "x"})
	var logs strings.Builder
	var rec reloads
	w := secretfile.New(secretfile.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnReload: rec.record})
	var v secretfile.Value[string]
	apply := func(b []byte) error {
		s := strings.TrimSpace(string(b))
		if s == "" || strings.HasPrefix(s, "bad") {
			return errors.New("not a valid secret")
		}
		v.Store(s)
		return nil
	}
	if err := w.Add("AUTHGATE_TEST_FILE", vol.Path("secret"), apply); err != nil {
		t.Fatal(err)
	}
	if got := v.Load(); got != "one" {
		t.Fatalf("after Add: %q, want one", got)
	}

	w.Check() // nothing changed
	if len(rec.errs) != 0 {
		t.Errorf("unchanged file reported: %v", rec.errs)
	}

	vol.Update(map[string]string{"secret": "two\n", "other": "x"})
	w.Check()
	if got := v.Load(); got != "two" {
		t.Errorf("after the swap: %q, want two", got)
	}

	// An invalid version keeps the last good value, reported once.
	vol.Update(map[string]string{"secret": "bad-value-hunter2", "other": "x"})
	w.Check()
	w.Check()
	if got := v.Load(); got != "two" {
		t.Errorf("after an invalid version: %q, want two kept", got)
	}
	errs := rec.errs["AUTHGATE_TEST_FILE"]
	if len(errs) != 2 || errs[0] != nil || errs[1] == nil {
		t.Errorf("OnReload results = %v, want [nil, error]", errs)
	}
	if !strings.Contains(logs.String(), "keeping the last good value") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("logs = %s, want one error without the content", logs.String())
	}

	// A valid version after it applies again.
	vol.Update(map[string]string{"secret": "three", "other": "x"})
	w.Check()
	if got := v.Load(); got != "three" {
		t.Errorf("after a fixed version: %q, want three", got)
	}
}

func TestWatcherAddRejects(t *testing.T) {
	vol := secretfiletest.NewKubeletDir(t, map[string]string{"secret": "bad"})
	w := secretfile.New(secretfile.Options{})
	err := w.Add("AUTHGATE_TEST_FILE", vol.Path("secret"), func([]byte) error { return errors.New("invalid") })
	if err == nil || !strings.Contains(err.Error(), "AUTHGATE_TEST_FILE") {
		t.Errorf("Add = %v, want an error naming the variable", err)
	}
	if err := w.Add("AUTHGATE_MISSING_FILE", vol.Path("missing"), func([]byte) error { return nil }); err == nil {
		t.Error("Add of a missing file succeeded")
	}
}
