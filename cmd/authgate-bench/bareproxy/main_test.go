package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProxyForwards: the reference proxy reaches a real upstream and adds
// nothing an upstream would see as identity, with and without pooled
// buffers.
func TestProxyForwards(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization")+"|"+r.URL.Path)
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	for _, pooled := range []bool{false, true} {
		front := httptest.NewServer(newProxy(target, pooled))
		for range 2 { // the second response reuses the pooled buffer
			resp, err := http.Get(front.URL + "/a/b")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "|/a/b" {
				t.Errorf("pooled=%v: upstream saw %q, want no Authorization and path /a/b", pooled, body)
			}
		}
		front.Close()
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"-listen", "0.0.0.0:0", "-upstream", "http://127.0.0.1:1"},
		{"-upstream", "http://192.0.2.1:80"},
		{"-upstream", "https://127.0.0.1:1"},
		{},
	} {
		var stderr strings.Builder
		if code := run(t.Context(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}
