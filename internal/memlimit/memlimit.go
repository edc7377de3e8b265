// Package memlimit gives the Go runtime a soft memory limit taken from the
// container's cgroup v2 memory limit, so that the garbage collector works
// harder before the kernel's OOM killer does, instead of letting the heap
// grow to twice its live size (GOGC=100) regardless of the pod's limit.
//
// It does nothing when GOMEMLIMIT is set (any value, "off" included: the
// operator decided) or when no cgroup v2 limit applies.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultFraction is the share of the cgroup limit given to the Go runtime.
// The rest is headroom for what the runtime's limit does not cover: the
// binary's mapped pages, which the kernel charges to the cgroup too, and
// memory the runtime has not yet returned.
const DefaultFraction = 0.9

// Options configures FromCgroup. The zero value reads the real process's
// cgroup and sets the runtime's limit.
type Options struct {
	// Root is where the cgroup v2 hierarchy is mounted; empty means
	// /sys/fs/cgroup.
	Root string
	// ProcCgroup is the file that names this process's cgroup; empty means
	// /proc/self/cgroup.
	ProcCgroup string
	// Fraction of memory.max to use, in (0, 1]; zero means DefaultFraction.
	Fraction float64
	// Getenv reads GOMEMLIMIT; nil means os.Getenv.
	Getenv func(string) string
	// SetLimit applies the limit; nil means debug.SetMemoryLimit.
	SetLimit func(int64) int64
}

// Result says what FromCgroup did.
type Result struct {
	// Limit is the soft memory limit set, in bytes; 0 when none was set.
	Limit int64
	// CgroupMax is the cgroup's memory.max in bytes; 0 when unlimited or
	// not found.
	CgroupMax int64
	// Source is the memory.max file read, or why nothing was set.
	Source string
}

// FromCgroup sets the runtime's soft memory limit to Fraction of the
// smallest memory.max on the path from this process's cgroup up to the
// root, unless GOMEMLIMIT is set. A missing cgroup v2 hierarchy is not an
// error (Result.Limit is 0); an unreadable or malformed file is.
func FromCgroup(o Options) (Result, error) {
	if o.Root == "" {
		o.Root = "/sys/fs/cgroup"
	}
	if o.ProcCgroup == "" {
		o.ProcCgroup = "/proc/self/cgroup"
	}
	if o.Fraction == 0 {
		o.Fraction = DefaultFraction
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.SetLimit == nil {
		o.SetLimit = debug.SetMemoryLimit
	}
	if o.Fraction < 0 || o.Fraction > 1 || math.IsNaN(o.Fraction) {
		return Result{}, fmt.Errorf("memlimit: fraction %v not in (0, 1]", o.Fraction)
	}
	if v := o.Getenv("GOMEMLIMIT"); v != "" {
		return Result{Source: "GOMEMLIMIT is set"}, nil
	}
	dir, err := cgroupDir(o.ProcCgroup)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNoV2) {
			return Result{Source: "no cgroup v2"}, nil
		}
		return Result{}, err
	}
	max, source, err := smallestMax(o.Root, dir)
	if err != nil {
		return Result{}, err
	}
	if max == 0 {
		return Result{Source: "no cgroup memory limit"}, nil
	}
	limit := int64(float64(max) * o.Fraction)
	o.SetLimit(limit)
	return Result{Limit: limit, CgroupMax: max, Source: source}, nil
}

var errNoV2 = errors.New("memlimit: no cgroup v2 entry")

// cgroupDir returns this process's cgroup v2 path from /proc/self/cgroup
// (the "0::/path" line; cgroup v1 lines are ignored).
func cgroupDir(procCgroup string) (string, error) {
	f, err := os.Open(procCgroup)
	if err != nil {
		return "", fmt.Errorf("memlimit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if path, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return path, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("memlimit: read %s: %w", procCgroup, err)
	}
	return "", errNoV2
}

// smallestMax walks from root/dir up to root and returns the smallest
// memory.max found (0 for none), and the file it came from. Inside a
// container with its own cgroup namespace dir is "/", and root's own
// memory.max is the container's limit.
func smallestMax(root, dir string) (int64, string, error) {
	var (
		best   int64
		source string
	)
	d := filepath.Join(root, filepath.Clean("/"+dir))
	for {
		path := filepath.Join(d, "memory.max")
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return 0, "", fmt.Errorf("memlimit: %w", err)
		default:
			v := strings.TrimSpace(string(b))
			if v != "max" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n <= 0 {
					return 0, "", fmt.Errorf("memlimit: %s: %q is neither a byte count nor \"max\"", path, v)
				}
				if best == 0 || n < best {
					best, source = n, path
				}
			}
		}
		if d == filepath.Clean(root) {
			return best, source, nil
		}
		d = filepath.Dir(d)
	}
}
