// Package codetrim releases the executable's pages that only start-up
// used.
//
// A Go binary's resident set is mostly file pages: the code, type
// descriptors and function tables it has touched, each fault rounded up by
// the kernel's fault-around (it maps up to 64 KiB of already-cached pages
// around every page fault). Package inits, configuration loading and the
// provider's discovery touch a large share of the binary once, and those
// pages then stay mapped for the life of the process although the request
// path never runs them again: for authgate about 4 MiB of its idle RSS.
//
// Release unmaps the executable's read-only mappings (madvise
// MADV_DONTNEED). Nothing is lost: the pages stay in the page cache, and
// the next instruction or table read that needs one maps it again with a
// minor fault, so only what the running proxy uses comes back. Mappings
// holding private copies (a relocated RELRO segment of a PIE or cgo
// binary, a debugger's breakpoint) are left alone, since dropping those
// would bring back the file's unrelocated bytes.
package codetrim

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mapping is an address range of the executable that Release may drop.
type mapping struct {
	start, end uintptr
}

// Stats says what Release did.
type Stats struct {
	// Mappings is how many read-only mappings of the executable were
	// released.
	Mappings int
	// FileBefore and FileAfter are the process's resident file pages
	// (RssFile in /proc/self/status) around the release, in bytes.
	FileBefore, FileAfter int64
}

// releasable reads /proc/<pid>/smaps and returns exe's mappings that are
// read-only, private and hold no anonymous (copied-on-write) pages.
func releasable(smaps io.Reader, exe string) ([]mapping, error) {
	var (
		out     []mapping
		cur     mapping
		inExe   bool
		anonKiB int64 = -1
	)
	flush := func() {
		if inExe && anonKiB == 0 {
			out = append(out, cur)
		}
		inExe, anonKiB = false, -1
	}
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isRangeField(fields[0]) {
			// A mapping's header: "start-end perms offset dev inode [path]".
			flush()
			if len(fields) < 6 || strings.Join(fields[5:], " ") != exe {
				continue
			}
			perms := fields[1]
			if len(perms) < 4 || perms[1] != '-' || perms[3] != 'p' {
				continue // writable or shared
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				return nil, fmt.Errorf("codetrim: malformed smaps range %q", fields[0])
			}
			cur, inExe = mapping{uintptr(start), uintptr(end)}, true
			continue
		}
		if inExe && fields[0] == "Anonymous:" && len(fields) >= 2 {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("codetrim: malformed smaps line %q", line)
			}
			anonKiB = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("codetrim: read smaps: %w", err)
	}
	flush()
	return out, nil
}

// isRangeField reports whether f looks like "7f12a000-7f12b000".
func isRangeField(f string) bool {
	lo, hi, ok := strings.Cut(f, "-")
	if !ok || lo == "" || hi == "" {
		return false
	}
	for _, c := range lo + hi {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// fileRSS reads RssFile from a /proc/<pid>/status, in bytes.
func fileRSS(status string) (int64, bool) {
	for line := range strings.SplitSeq(status, "\n") {
		v, ok := strings.CutPrefix(line, "RssFile:")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}
