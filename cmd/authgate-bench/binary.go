package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// binaryInfo is a binary's size and what its package inits allocate.
type binaryInfo struct {
	name                 string
	size                 int64
	initBytes            int64
	initAllocs           int64
	topInits             string // the three largest, "pkg N KiB"
	initTraceUnavailable bool
}

// inspectBinary runs path with args under GODEBUG=inittrace=1 (every init
// prints "init PKG @T ms, D ms clock, B bytes, A allocs") and sums the
// lines.
func inspectBinary(ctx context.Context, name, path string, args ...string) binaryInfo {
	info := binaryInfo{name: name}
	if st, err := os.Stat(path); err == nil {
		info.size = st.Size()
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(childEnv(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run() // the exit status does not matter: the inits ran
	inits := parseInitTrace(stderr.String())
	if len(inits) == 0 {
		info.initTraceUnavailable = true
		return info
	}
	for _, in := range inits {
		info.initBytes += in.bytes
		info.initAllocs += in.allocs
	}
	slices.SortFunc(inits, func(a, b initLine) int { return int(b.bytes - a.bytes) })
	var top []string
	for _, in := range inits[:min(3, len(inits))] {
		top = append(top, fmt.Sprintf("%s %s", in.pkg, kib(in.bytes)))
	}
	info.topInits = strings.Join(top, ", ")
	return info
}

type initLine struct {
	pkg           string
	bytes, allocs int64
}

// parseInitTrace reads the runtime's inittrace lines:
//
//	init net/http @1.2 ms, 0.05 ms clock, 2880 bytes, 20 allocs
func parseInitTrace(out string) []initLine {
	var lines []initLine
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(line, "init ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		// pkg @T ms, D ms clock, B bytes, A allocs
		if len(f) != 10 || f[7] != "bytes," || f[9] != "allocs" {
			continue
		}
		b, err1 := strconv.ParseInt(f[6], 10, 64)
		a, err2 := strconv.ParseInt(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		lines = append(lines, initLine{pkg: f[0], bytes: b, allocs: a})
	}
	return lines
}
