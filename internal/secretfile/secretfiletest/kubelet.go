// Package secretfiletest writes files the way the kubelet updates a mounted
// Secret, for tests of secret rotation.
package secretfiletest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// KubeletDir is a Secret volume updated the way the kubelet's
// AtomicWriter does: each version in a timestamped directory, the "..data"
// symlink pointing at the current one and renamed over atomically, and
// every key a symlink through "..data".
type KubeletDir struct {
	t   testing.TB
	Dir string
	seq atomic.Int64
}

// NewKubeletDir returns a volume holding files (key → content).
func NewKubeletDir(t testing.TB, files map[string]string) *KubeletDir {
	k := &KubeletDir{t: t, Dir: t.TempDir()}
	k.Update(files)
	for key := range files {
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(k.Dir, key)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// Path is the path of key, as a pod sees it.
func (k *KubeletDir) Path(key string) string { return filepath.Join(k.Dir, key) }

// Update writes a new version with files and swaps "..data" to it, then
// removes the old version, as the kubelet does.
func (k *KubeletDir) Update(files map[string]string) {
	k.t.Helper()
	ts := fmt.Sprintf("..2026_12_07_10_00_00.%06d", k.seq.Add(1))
	if err := os.Mkdir(filepath.Join(k.Dir, ts), 0o755); err != nil {
		k.t.Fatal(err)
	}
	for key, content := range files {
		if err := os.WriteFile(filepath.Join(k.Dir, ts, key), []byte(content), 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(k.Dir, "..data"))
	tmp := filepath.Join(k.Dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.Dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(k.Dir, old)); err != nil {
			k.t.Fatal(err)
		}
	}
}
