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
