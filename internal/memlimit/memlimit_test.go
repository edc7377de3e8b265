package memlimit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCgroup writes a cgroup v2 tree under a temporary root: files maps a
// path relative to the root to its memory.max, and proc is the content of
// /proc/self/cgroup.
func fakeCgroup(t *testing.T, proc string, files map[string]string) Options {
	t.Helper()
	root := t.TempDir()
	for dir, max := range files {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "memory.max"), []byte(max), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pc := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(pc, []byte(proc), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{Root: root, ProcCgroup: pc, Getenv: func(string) string { return "" }}
}

func TestFromCgroup(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		proc      string
		files     map[string]string
		fraction  float64
		env       string
		wantLimit int64
		wantMax   int64
		wantErr   string
	}{
		{name: "container namespace, root limit", proc: "0::/\n", files: map[string]string{".": "67108864\n"}, wantLimit: 64 * mib * 9 / 10, wantMax: 64 * mib},
		{name: "nested, smallest wins", proc: "0::/kubepods/pod1/ctr\n", files: map[string]string{"kubepods": "1073741824", "kubepods/pod1": "134217728", "kubepods/pod1/ctr": "max"}, wantLimit: 128 * mib * 9 / 10, wantMax: 128 * mib},
		{name: "fraction", proc: "0::/\n", files: map[string]string{".": "100000000"}, fraction: 0.5, wantLimit: 50000000, wantMax: 100000000},
		{name: "unlimited", proc: "0::/\n", files: map[string]string{".": "max\n"}},
		{name: "no memory controller file", proc: "0::/a\n", files: map[string]string{}},
		{name: "cgroup v1 only", proc: "12:memory:/docker/abc\n", files: map[string]string{".": "1000"}},
		{name: "GOMEMLIMIT set", proc: "0::/\n", files: map[string]string{".": "67108864"}, env: "100MiB"},
		{name: "GOMEMLIMIT off", proc: "0::/\n", files: map[string]string{".": "67108864"}, env: "off"},
		{name: "malformed", proc: "0::/\n", files: map[string]string{".": "lots"}, wantErr: `"lots" is neither a byte count nor "max"`},
		{name: "zero", proc: "0::/\n", files: map[string]string{".": "0"}, wantErr: "neither a byte count"},
		{name: "bad fraction", proc: "0::/\n", files: map[string]string{".": "1000"}, fraction: 1.5, wantErr: "fraction 1.5 not in (0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fakeCgroup(t, tt.proc, tt.files)
			o.Fraction = tt.fraction
			o.Getenv = func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.env
				}
				return ""
			}
			var set int64
			o.SetLimit = func(n int64) int64 { set = n; return 0 }
			r, err := FromCgroup(o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromCgroup() error = %v, want one containing %q", err, tt.wantErr)
				}
				if set != 0 {
					t.Errorf("limit set to %d on error", set)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromCgroup() error = %v", err)
			}
			if r.Limit != tt.wantLimit || set != tt.wantLimit {
				t.Errorf("Limit = %d, set %d, want %d", r.Limit, set, tt.wantLimit)
			}
			if r.CgroupMax != tt.wantMax {
				t.Errorf("CgroupMax = %d, want %d", r.CgroupMax, tt.wantMax)
			}
			if r.Source == "" {
				t.Error("Source is empty")
			}
		})
	}
}

func TestFromCgroupNoProcFile(t *testing.T) {
	r, err := FromCgroup(Options{Root: t.TempDir(), ProcCgroup: filepath.Join(t.TempDir(), "missing"), Getenv: func(string) string { return "" },
		SetLimit: func(int64) int64 { t.Error("SetLimit called"); return 0 }})
	if err != nil || r.Limit != 0 {
		t.Fatalf("FromCgroup() = %+v, %v; want no limit and no error", r, err)
	}
}
