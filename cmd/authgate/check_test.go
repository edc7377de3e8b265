package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/redistest"
)

// checkEnv is a complete configuration in front of a real in-process OP
// and a real upstream.
func checkEnv(t *testing.T, opts ...gateOption) (map[string]string, *testOP) {
	t.Helper()
	base := "http://127.0.0.1:4180"
	op, clientID, secret := startOP(t, base+"/oauth2/callback")
	up := startUpstream(t)
	return gateEnv(base, op, clientID, secret, up, opts...), op
}

// runCheckEnv runs `authgate check` with exactly env and returns its exit
// code and output.
func runCheckEnv(t *testing.T, env map[string]string) (int, string) {
	t.Helper()
	for _, v := range configVariables() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"check"}, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	// No secret, whatever the outcome.
	for _, k := range []string{"AUTHGATE_CLIENT_SECRET", "AUTHGATE_COOKIE_SECRET", "AUTHGATE_REDIS_PASSWORD"} {
		if s := env[k]; s != "" && strings.Contains(out, s) {
			t.Errorf("check output contains %s's value:\n%s", k, out)
		}
	}
	for _, s := range []string{"hunter2", "test-secret-"} {
		if strings.Contains(out, s) {
			t.Errorf("check output contains the secret %q:\n%s", s, out)
		}
	}
	return code, out
}

// line returns the output line of the named check, or "".
func line(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, name+": ") {
			return l
		}
	}
	return ""
}

func TestCheckPasses(t *testing.T) {
	srv := redistest.Start(t)
	env, _ := checkEnv(t, withEnv("AUTHGATE_SESSION_STORE", "redis"), withEnv("AUTHGATE_REDIS_URL", srv.URL()),
		withEnv("AUTHGATE_POST_LOGOUT_REDIRECT_URL", "http://127.0.0.1:4180/bye"))
	code, out := runCheckEnv(t, env)
	t.Logf("authgate check:\n%s", out)
	if code != 0 {
		t.Fatalf("check = %d, want 0:\n%s", code, out)
	}
	for _, name := range []string{"config", "scopes", "discovery", "jwks", "pkce", "client authentication", "end_session", "backchannel logout", "redis", "upstream"} {
		if l := line(out, name); !strings.HasPrefix(l, name+": ok") {
			t.Errorf("line %q = %q, want ok:\n%s", name, l, out)
		}
	}
	if l := line(out, "client authentication"); !strings.Contains(l, "client_secret_basic") {
		t.Errorf("client authentication = %q, want client_secret_basic", l)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("output has a failure:\n%s", out)
	}
}

func TestCheckUnixUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	env, _ := checkEnv(t, withEnv("AUTHGATE_UPSTREAM", "unix://"+sock))
	code, out := runCheckEnv(t, env)
	if code != 0 || line(out, "upstream") != "upstream: ok (unix://"+sock+")" {
		t.Errorf("check = %d, upstream line %q:\n%s", code, line(out, "upstream"), out)
	}
	srv.Close()
	code, out = runCheckEnv(t, env)
	if code != 1 || !strings.Contains(line(out, "upstream"), "FAIL") {
		t.Errorf("closed socket: check = %d, upstream line %q", code, line(out, "upstream"))
	}
}

func TestCheckFailures(t *testing.T) {
	closedAddr := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) []gateOption
		edit func(doc map[string]any)
		// want maps a check to a fragment of its FAIL line.
		want map[string]string
	}{
		{
			name: "upstream refuses",
			opts: func(t *testing.T) []gateOption {
				return []gateOption{withEnv("AUTHGATE_UPSTREAM", "http://"+closedAddr(t))}
			},
			want: map[string]string{"upstream": "connection refused"},
		},
		{
			name: "redis unreachable, password in the URL",
			opts: func(t *testing.T) []gateOption {
				return []gateOption{withEnv("AUTHGATE_REDIS_URL", "redis://:hunter2@"+closedAddr(t))}
			},
			want: map[string]string{"redis": "PING"},
		},
		{
			name: "issuer unreachable",
			opts: func(t *testing.T) []gateOption {
				return []gateOption{withEnv("AUTHGATE_OIDC_ISSUER_URL", "http://"+closedAddr(t)+"/")}
			},
			want: map[string]string{"discovery": "connection refused"},
		},
		{
			name: "issuer mismatch",
			edit: func(doc map[string]any) { doc["issuer"] = "https://elsewhere.example/" },
			want: map[string]string{"discovery": "is not AUTHGATE_OIDC_ISSUER_URL"},
		},
		{
			name: "no PKCE",
			edit: func(doc map[string]any) { delete(doc, "code_challenge_methods_supported") },
			want: map[string]string{"pkce": "lacks S256"},
		},
		{
			name: "plain PKCE only",
			edit: func(doc map[string]any) { doc["code_challenge_methods_supported"] = []string{"plain"} },
			want: map[string]string{"pkce": "lacks S256"},
		},
		{
			name: "client auth method unsupported",
			edit: func(doc map[string]any) { doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"} },
			want: map[string]string{"client authentication": "client_secret_basic"},
		},
		{
			name: "post-logout without end_session",
			opts: func(t *testing.T) []gateOption {
				return []gateOption{withEnv("AUTHGATE_POST_LOGOUT_REDIRECT_URL", "http://127.0.0.1:4180/bye")}
			},
			edit: func(doc map[string]any) { delete(doc, "end_session_endpoint") },
			want: map[string]string{"end_session": "no end_session_endpoint"},
		},
		{
			name: "empty key set",
			edit: func(doc map[string]any) { doc["jwks_uri"] = doc["issuer"].(string) + "no-such-keys" },
			want: map[string]string{"jwks": "status 404"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []gateOption
			if tc.opts != nil {
				opts = tc.opts(t)
			}
			env, op := checkEnv(t, opts...)
			op.editDiscovery = tc.edit
			code, out := runCheckEnv(t, env)
			if code != 1 {
				t.Errorf("check = %d, want 1:\n%s", code, out)
			}
			for name, frag := range tc.want {
				if l := line(out, name); !strings.HasPrefix(l, name+": FAIL: ") || !strings.Contains(l, frag) {
					t.Errorf("line %q = %q, want a FAIL with %q:\n%s", name, l, frag, out)
				}
			}
			if n := strings.Count(out, "FAIL"); n != len(tc.want) {
				t.Errorf("%d failures, want %d:\n%s", n, len(tc.want), out)
			}
		})
	}
}

// TestCheckEndSessionOptional: without AUTHGATE_POST_LOGOUT_REDIRECT_URL a
// provider without end_session passes, with a note.
func TestCheckEndSessionOptional(t *testing.T) {
	env, op := checkEnv(t)
	op.editDiscovery = func(doc map[string]any) { delete(doc, "end_session_endpoint") }
	code, out := runCheckEnv(t, env)
	if code != 0 || !strings.Contains(line(out, "end_session"), "ok (not advertised") {
		t.Errorf("check = %d, end_session line %q:\n%s", code, line(out, "end_session"), out)
	}
}

// TestCheckConfigProblems: a bad configuration lists every problem, one
// line each, and checks nothing else.
func TestCheckConfigProblems(t *testing.T) {
	code, out := runCheckEnv(t, map[string]string{
		"AUTHGATE_COOKIE_SECRET": "c2hvcnQ=",
		"AUTHGATE_SESSION_TTL":   "soon",
		"AUTHGATE_CLIENT_SECRET": "hunter2",
	})
	if code != 1 {
		t.Errorf("check = %d, want 1", code)
	}
	for _, want := range []string{"AUTHGATE_UPSTREAM: required", "AUTHGATE_OIDC_ISSUER_URL: required", "AUTHGATE_CLIENT_ID: required",
		"AUTHGATE_REDIRECT_URL: required", "AUTHGATE_COOKIE_SECRET: key 1", "AUTHGATE_SESSION_TTL"} {
		if !strings.Contains(out, "config: FAIL: "+want) {
			t.Errorf("output lacks config: FAIL: %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "discovery") {
		t.Errorf("network checks ran on a bad config:\n%s", out)
	}
}

// TestCheckPrivateKeyJWT: with AUTHGATE_CLIENT_PRIVATE_KEY_FILE the
// provider must advertise private_key_jwt.
func TestCheckPrivateKeyJWT(t *testing.T) {
	file, _ := writeClientKey(t)
	for _, tc := range []struct {
		name    string
		methods []string
		want    string
	}{
		{"advertised", []string{"client_secret_basic", "private_key_jwt"}, "client authentication: ok (private_key_jwt)"},
		{"not advertised", []string{"client_secret_basic"}, "client authentication: FAIL: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, op := checkEnv(t, func(env map[string]string) {
				delete(env, "AUTHGATE_CLIENT_SECRET")
				env["AUTHGATE_CLIENT_PRIVATE_KEY_FILE"] = file
			})
			op.editDiscovery = func(doc map[string]any) { doc["token_endpoint_auth_methods_supported"] = tc.methods }
			_, out := runCheckEnv(t, env)
			if l := line(out, "client authentication"); !strings.HasPrefix(l, tc.want) {
				t.Errorf("client authentication line = %q, want prefix %q:\n%s", l, tc.want, out)
			}
		})
	}
}
