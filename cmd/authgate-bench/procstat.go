package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// procSample is what /proc says about one process at one moment.
type procSample struct {
	// cpuTicks is utime + stime of every thread, in clock ticks (USER_HZ).
	cpuTicks uint64
	// rssKiB is the resident set now (VmRSS); hwmKiB its peak (VmHWM) since
	// the process started or since resetPeakRSS.
	rssKiB, hwmKiB int64
	// anonKiB and fileKiB split the resident set (RssAnon, RssFile): heap
	// and stacks, and the mapped pages of the executable and libraries.
	anonKiB, fileKiB int64
}

// readProc samples /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read process stat: %w", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read process status: %w", err)
	}
	var s procSample
	if s.cpuTicks, err = parseStatCPU(stat); err != nil {
		return procSample{}, err
	}
	if s.rssKiB, err = parseStatusKiB(status, "VmRSS"); err != nil {
		return procSample{}, err
	}
	if s.hwmKiB, err = parseStatusKiB(status, "VmHWM"); err != nil {
		return procSample{}, err
	}
	// Linux 4.5+; left at 0 where missing.
	s.anonKiB, _ = parseStatusKiB(status, "RssAnon")
	s.fileKiB, _ = parseStatusKiB(status, "RssFile")
	return s, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15 of proc(5)'s
// /proc/<pid>/stat). The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last
// ')'.
func parseStatCPU(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse process stat: no command name")
	}
	// After ")": field 3 (state) is rest[0], so field n is rest[n-3].
	rest := strings.Fields(string(stat[i+1:]))
	if len(rest) < 13 {
		return 0, fmt.Errorf("parse process stat: %d fields after the command name, want at least 13", len(rest))
	}
	utime, err := strconv.ParseUint(rest[14-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse process stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(rest[15-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse process stat stime: %w", err)
	}
	return utime + stime, nil
}

// parseStatusKiB returns the value of a "Name:   1234 kB" line of
// /proc/<pid>/status.
func parseStatusKiB(status []byte, field string) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
		if unit != "kB" {
			return 0, fmt.Errorf("parse process status %s: unit %q, want kB", field, unit)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse process status %s: %w", field, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("parse process status: no %s line", field)
}

// resetPeakRSS sets VmHWM back to the current RSS (proc(5), clear_refs value
// 5, Linux 4.0+), so that the next VmHWM is the peak of one run only.
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	return nil
}

// clockTicks returns USER_HZ, the unit of /proc/<pid>/stat times; Linux
// reports 100 on every common architecture, which is the fallback.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// descendants returns the process ids of pid's children, grandchildren
// and so on (Apache's worker processes), read from /proc/*/stat.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, err := parseStatPPID(stat); err == nil {
			children[ppid] = append(children[ppid], id)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parseStatPPID returns field 4 of /proc/<pid>/stat.
func parseStatPPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse process stat: no command name")
	}
	rest := strings.Fields(string(stat[i+1:]))
	if len(rest) < 2 {
		return 0, errors.New("parse process stat: no parent id")
	}
	return strconv.Atoi(rest[4-3])
}

// readTree is readProc summed over pid and its descendants: CPU, RSS and
// the sum of the peaks (each process's VmHWM, which is at least the peak
// of their sum). A process that exits between the listing and the read is
// left out.
func readTree(pid int) (procSample, error) {
	s, err := readProc(pid)
	if err != nil {
		return s, err
	}
	// Workers that exited (Apache retires idle ones) are in the parent's
	// cutime and cstime, fields 16 and 17.
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			if rest := strings.Fields(string(stat[i+1:])); len(rest) > 17-3 {
				cu, _ := strconv.ParseUint(rest[16-3], 10, 64)
				cs, _ := strconv.ParseUint(rest[17-3], 10, 64)
				s.cpuTicks += cu + cs
			}
		}
	}
	for _, c := range descendants(pid) {
		if cs, err := readProc(c); err == nil {
			s.cpuTicks += cs.cpuTicks
			s.rssKiB += cs.rssKiB
			s.hwmKiB += cs.hwmKiB
			s.anonKiB += cs.anonKiB
			s.fileKiB += cs.fileKiB
		}
	}
	return s, nil
}

// resetPeakTree is resetPeakRSS for pid and its descendants.
func resetPeakTree(pid int) error {
	if err := resetPeakRSS(pid); err != nil {
		return err
	}
	for _, c := range descendants(pid) {
		resetPeakRSS(c)
	}
	return nil
}
