package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// residentReport writes, for the process pid running the executable exe,
// how much of each ELF section of exe is resident (/proc/<pid>/pagemap)
// and, for .text, which packages' code: the file-page part of the
// resident set, by what it holds. Reading pagemap's present bits needs no
// privilege.
func residentReport(w io.Writer, pid int, exe string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return fmt.Errorf("resident pages: %w", err)
	}
	defer f.Close()
	present, err := presentPages(pid, exe)
	if err != nil {
		return err
	}
	const page = 4096
	fmt.Fprintf(w, "%-14s %10s %10s\n", "section", "size KiB", "resident")
	for _, s := range f.Sections {
		if s.Addr == 0 || s.Size == 0 || s.Type == elf.SHT_NOBITS {
			continue
		}
		var res uint64
		for a := s.Addr &^ (page - 1); a < s.Addr+s.Size; a += page {
			if present[a] {
				res += page
			}
		}
		fmt.Fprintf(w, "%-14s %10d %10d\n", s.Name, s.Size>>10, res>>10)
	}
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("resident pages: symbols: %w", err)
	}
	text := f.Section(".text")
	if text == nil {
		return nil
	}
	slices.SortFunc(syms, func(a, b elf.Symbol) int { return int(int64(a.Value) - int64(b.Value)) })
	type usage struct {
		pkg       string
		size, res uint64
	}
	byPkg := map[string]*usage{}
	for i, s := range syms {
		if s.Value < text.Addr || s.Value >= text.Addr+text.Size {
			continue
		}
		end := text.Addr + text.Size
		if i+1 < len(syms) && syms[i+1].Value < end {
			end = syms[i+1].Value
		}
		p := symbolPackage(s.Name)
		u := byPkg[p]
		if u == nil {
			u = &usage{pkg: p}
			byPkg[p] = u
		}
		for a := s.Value; a < end; {
			next := min((a&^(page-1))+page, end)
			u.size += next - a
			if present[a&^(page-1)] {
				u.res += next - a
			}
			a = next
		}
	}
	list := make([]*usage, 0, len(byPkg))
	for _, u := range byPkg {
		list = append(list, u)
	}
	slices.SortFunc(list, func(a, b *usage) int { return int(int64(b.res) - int64(a.res)) })
	fmt.Fprintf(w, "\n.text by package (KiB resident of KiB)\n")
	for _, u := range list[:min(60, len(list))] {
		fmt.Fprintf(w, "%7d %7d  %s\n", u.res>>10, u.size>>10, u.pkg)
	}
	return nil
}

// presentPages returns the page addresses of exe's mappings in pid that
// are resident.
func presentPages(pid int, exe string) (map[uint64]bool, error) {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("resident pages: %w", err)
	}
	defer maps.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, fmt.Errorf("resident pages: %w", err)
	}
	defer pm.Close()
	present := map[uint64]bool{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		entries := make([]byte, (end-start)/4096*8)
		if _, err := pm.ReadAt(entries, int64(start/4096*8)); err != nil {
			return nil, fmt.Errorf("resident pages: read pagemap: %w", err)
		}
		for i := 0; i+8 <= len(entries); i += 8 {
			if binary.LittleEndian.Uint64(entries[i:])&(1<<63) != 0 {
				present[start+uint64(i/8)*4096] = true
			}
		}
	}
	return present, sc.Err()
}

// symbolPackage returns the import path of a Go symbol's package:
// "net/http.(*conn).serve" → "net/http".
func symbolPackage(name string) string {
	slash := strings.LastIndexByte(name, '/')
	rest := name[slash+1:]
	if dot := strings.IndexByte(rest, '.'); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

// writeResident writes residentReport to the file name.
func writeResident(name string, pid int, exe string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := residentReport(f, pid, exe); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
