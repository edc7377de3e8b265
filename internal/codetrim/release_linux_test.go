package codetrim

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"
)

// TestRelease drops the test binary's own code pages and checks that they
// were resident before, that fewer are after, and that the process still
// runs code, reads its function tables (a stack trace) and collects
// garbage afterwards.
func TestRelease(t *testing.T) {
	before := hash()
	st, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if st.Mappings == 0 {
		t.Fatal("Release released no mapping of the executable")
	}
	if st.FileBefore <= 0 || st.FileAfter >= st.FileBefore {
		t.Errorf("resident file pages %d KiB before, %d KiB after: want fewer after", st.FileBefore>>10, st.FileAfter>>10)
	}
	runtime.GC()
	if got := hash(); got != before {
		t.Errorf("sha256 after Release = %s, before %s", got, before)
	}
	buf := make([]byte, 4096)
	if n := runtime.Stack(buf, false); !strings.Contains(string(buf[:n]), "codetrim.TestRelease") {
		t.Errorf("stack trace after Release does not name this test:\n%s", buf[:n])
	}
	// Twice is harmless.
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
}

func hash() string {
	s := sha256.Sum256([]byte(strings.Repeat("authgate", 1000)))
	return hex.EncodeToString(s[:])
}
