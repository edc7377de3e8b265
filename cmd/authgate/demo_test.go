//go:build !nodemo

package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `authgate demo` in-process on free loopback ports, signs in
// as alice through the demo provider's login page and checks that the
// whoami page shows what the upstream received.
func TestDemo(t *testing.T) {
	for _, v := range configVariables() {
		t.Setenv(v.Name, "x") // restored after the test; the demo sets its own
	}
	for _, v := range configVariables() {
		unsetenv(v.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runDemo(ctx, []string{"--listen", "127.0.0.1:0", "--idp-listen", "127.0.0.1:0", "--upstream-listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	urlRe := regexp.MustCompile(`Open (http://\S+)/ in a browser`)
	var base string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatal("demo printed no URL")
	}
	b := newBrowser(t)
	// Wait for discovery (the demo prints the URL before it completes).
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp = b.navigate(base + "/hello?x=1")
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	page := readBody(t, resp)
	id := regexp.MustCompile(`name="authRequestID" value="([^"]+)"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("demo login page expected, got %d: %.300s", resp.StatusCode, page)
	}
	resp, err := b.PostForm(resp.Request.URL.ResolveReference(&url.URL{Path: "/login"}).String(),
		url.Values{"authRequestID": {id[1]}, "username": {"alice"}, "password": {"alice-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	if resp.Request.URL.String() != base+"/hello?x=1" {
		t.Errorf("landed on %s, want %s/hello?x=1", resp.Request.URL, base)
	}
	for _, want := range []string{"alice@example.com", "X-Forwarded-Groups", "admins", "Bearer"} {
		if !strings.Contains(page, want) {
			t.Errorf("whoami page lacks %q", want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("demo exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop within 10s of cancel")
	}
}

func TestDemoRefusesNonLoopback(t *testing.T) {
	var stderr strings.Builder
	code := runDemo(context.Background(), []string{"--listen", "0.0.0.0:0"}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("exit %d, stderr %q; want a refusal naming loopback", code, stderr.String())
	}
}
