package codetrim

import (
	"strings"
	"testing"
)

const smapsFixture = `00400000-00cb7000 r-xp 00000000 fd:01 1234 /usr/local/bin/authgate
Size:               8924 kB
Rss:                7300 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00cb7000-016f4000 r--p 008b7000 fd:01 1234 /usr/local/bin/authgate
Size:              10484 kB
Anonymous:             0 kB
016f4000-01750000 rw-p 012f4000 fd:01 1234 /usr/local/bin/authgate
Size:                368 kB
Anonymous:           120 kB
01750000-01760000 r--p 01350000 fd:01 1234 /usr/local/bin/authgate
Size:                 64 kB
Anonymous:             8 kB
01760000-01770000 r--s 01360000 fd:01 1234 /usr/local/bin/authgate
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 fd:01 1234 /usr/local/bin/authgate-old
Anonymous:             0 kB
7f0000400000-7f0000500000 r--p 00000000 00:00 0 
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
`

func TestReleasable(t *testing.T) {
	got, err := releasable(strings.NewReader(smapsFixture), "/usr/local/bin/authgate")
	if err != nil {
		t.Fatal(err)
	}
	// Only the text and the read-only data: not the writable data, not the
	// RELRO-like mapping holding copied pages, not a shared mapping, not
	// other files or anonymous memory.
	want := []mapping{{0x00400000, 0x00cb7000}, {0x00cb7000, 0x016f4000}}
	if len(got) != len(want) {
		t.Fatalf("releasable = %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("releasable[%d] = %x, want %x", i, got[i], want[i])
		}
	}
}

func TestReleasableWithoutAnonymousLine(t *testing.T) {
	// A kernel that did not say how many pages were copied: keep it.
	got, err := releasable(strings.NewReader("00400000-00cb7000 r-xp 00000000 fd:01 1234 /bin/x\nSize: 4 kB\n"), "/bin/x")
	if err != nil || len(got) != 0 {
		t.Errorf("releasable = %v, %v; want none", got, err)
	}
}

func TestReleasableMalformed(t *testing.T) {
	if _, err := releasable(strings.NewReader("00cb7000-00400000 r-xp 0 fd:01 1 /bin/x\nAnonymous: 0 kB\n"), "/bin/x"); err == nil {
		t.Error("an end before the start: want an error")
	}
}

func TestFileRSS(t *testing.T) {
	n, ok := fileRSS("Name:\tx\nRssAnon:\t  3088 kB\nRssFile:\t   16608 kB\n")
	if !ok || n != 16608<<10 {
		t.Errorf("fileRSS = %d, %v", n, ok)
	}
	if _, ok := fileRSS("Name:\tx\n"); ok {
		t.Error("fileRSS without the line: want !ok")
	}
}
