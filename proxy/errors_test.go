package proxy

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// TestErrorPageEscapes: every value on the HTML error page is escaped, and
// only links to our own paths are offered.
func TestErrorPageEscapes(t *testing.T) {
	p := problem{Status: http.StatusForbidden, Code: `code"<x>`, Description: `<script>alert(1)</script> & more`,
		LoginURL: `/oauth2/start?rd=%2F&x="><b>`, SignOutURL: "javascript:alert(1)"}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("X-Request-Id", `id<i>`)
	w := httptest.NewRecorder()
	writeError(w, r, "X-Request-Id", p)
	body := w.Body.String()
	for _, want := range []string{
		"<title>403 Forbidden</title>",
		"<h1>Forbidden</h1>",
		"<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>",
		`<a href="/oauth2/start?rd=%2F&amp;x=&#34;&gt;&lt;b&gt;">Sign in again</a>`,
		"<code>code&#34;&lt;x&gt; · request id&lt;i&gt;</code>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "javascript:") || strings.Contains(body, "Sign out") {
		t.Errorf("error page offers a non-local sign-out link:\n%s", body)
	}
	if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/html; charset=utf-8", got)
	}
	for _, u := range []string{"//evil.example/", `/\evil.example/`, "https://evil.example/", ""} {
		if isLocalPath(u) {
			t.Errorf("isLocalPath(%q) = true, want false", u)
		}
	}
}

// TestBinaryHasNoHTMLTemplate guards the binary's size: text/template's
// method lookups by name (html/template runs on it) make the linker keep
// every exported method of every type stored in an interface. Leaving it
// out of the production build took the binary from 31.2 to 20.6 MB and
// idle RSS from 13.7 to 12.7 MiB (issue 12). No package of the
// production build (-tags nodemo) may import it.
//
// Nor may the build link gRPC (issue 13): the OTel OTLP exporters did,
// through the collector package's generated stubs, and gRPC brings
// golang.org/x/net/trace and so html/template: 46 MB and about 4 MiB more
// idle memory. internal/otlpexport speaks OTLP/HTTP without it.
func TestBinaryHasNoHTMLTemplate(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "nodemo", "-deps",
		"-f", `{{.ImportPath}}{{range .Imports}}{{if eq . "html/template"}} imports-html-template{{end}}{{end}}`,
		"../cmd/authgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "github.com/authgate/authgate/proxy\n") {
		t.Fatalf("go list output lacks the proxy package; is the check broken?\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if pkg, ok := strings.CutSuffix(line, " imports-html-template"); ok {
			t.Errorf("%s imports html/template into the production build (-tags nodemo); render HTML without it (see writeErrorPage)", pkg)
		}
		if line == "google.golang.org/grpc" || strings.HasPrefix(line, "google.golang.org/grpc/") {
			t.Errorf("the production build (-tags nodemo) links %s; export OTLP with internal/otlpexport, not a gRPC-based package", line)
		}
	}
}
