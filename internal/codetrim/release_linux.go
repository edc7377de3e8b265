package codetrim

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Release drops this process's mappings of its own executable that
// releasable allows (see the package comment). It is safe to call at any
// time and from any goroutine: other goroutines that need a dropped page
// fault it back in.
func Release() (Stats, error) {
	var st Stats
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return st, fmt.Errorf("codetrim: find executable: %w", err)
	}
	before, _ := os.ReadFile("/proc/self/status")
	st.FileBefore, _ = fileRSS(string(before))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return st, fmt.Errorf("codetrim: %w", err)
	}
	maps, err := releasable(f, exe)
	f.Close()
	if err != nil {
		return st, err
	}
	var errs []error
	for _, m := range maps {
		// The range is a whole mapping of our own executable, page
		// aligned, and never written: dropping it only unmaps pages. The
		// raw call takes the addresses as numbers; no Go pointer is made.
		_, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED)
		if e != 0 {
			errs = append(errs, fmt.Errorf("codetrim: madvise %#x-%#x: %w", m.start, m.end, e))
			continue
		}
		st.Mappings++
	}
	after, _ := os.ReadFile("/proc/self/status")
	st.FileAfter, _ = fileRSS(string(after))
	return st, errors.Join(errs...)
}
