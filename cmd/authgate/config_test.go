package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setEnv clears every AUTHGATE_ variable and sets env.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, v := range configVariables() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	for _, k := range otelVariables {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// loadConfigWith loads the configuration of validEnv with extra set over it.
func loadConfigWith(t *testing.T, extra map[string]string) (*Config, error) {
	t.Helper()
	env := validEnv()
	for k, v := range extra {
		env[k] = v
	}
	setEnv(t, env)
	return loadConfig()
}

func validEnv() map[string]string {
	return map[string]string{
		"AUTHGATE_UPSTREAM":        "http://127.0.0.1:8080",
		"AUTHGATE_OIDC_ISSUER_URL": "https://idp.example.com/",
		"AUTHGATE_CLIENT_ID":       "authgate",
		"AUTHGATE_COOKIE_SECRET":   testCookieSecret,
		"AUTHGATE_REDIRECT_URL":    "https://app.example.com/oauth2/callback",
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	setEnv(t, validEnv())
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if cfg.ListenAddr != ":4180" || cfg.InternalAddr != ":4181" || cfg.PathPrefix != "/oauth2" ||
		cfg.CookieName != "authgate" || !cfg.CookieSecure || cfg.SessionTTL.String() != "168h0m0s" ||
		strings.Join(cfg.Scopes, ",") != "openid,email,profile" || cfg.LogFormat != "json" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if len(cfg.cookieKeys) != 1 || len(cfg.cookieKeys[0]) != 32 {
		t.Errorf("cookie keys = %d", len(cfg.cookieKeys))
	}
}

// TestLoadConfigListsEveryProblem: one run reports every bad variable, by
// name, and never echoes a secret.
func TestLoadConfigListsEveryProblem(t *testing.T) {
	secret := "c2VjcmV0LXRoYXQtaXMtbm90LTMyLWJ5dGVz" // base64, wrong length
	setEnv(t, map[string]string{
		"AUTHGATE_UPSTREAM":                "ftp://x",
		"AUTHGATE_COOKIE_SECRET":           secret,
		"AUTHGATE_CLIENT_SECRET":           "topsecret-client",
		"AUTHGATE_REDIRECT_URL":            "/relative",
		"AUTHGATE_SESSION_TTL":             "forever",
		"AUTHGATE_COOKIE_SECURE":           "maybe",
		"AUTHGATE_LOG_FORMAT":              "xml",
		"AUTHGATE_TLS_CERT_FILE":           "/x.pem",
		"AUTHGATE_SCOPES":                  "email",
		"AUTHGATE_UPSTREAM_MAX_IDLE_CONNS": "lots",
		"AUTHGATE_PROMPT":                  "none consent",
		"AUTHGATE_END_SESSION_URL":         "/logout",
		"AUTHGATE_USER_CLAIM":              "realm_access..x",
		"AUTHGATE_AUTH_PARAMS":             "access_type=offline&redirect_uri=https://evil.example&scope=x",
	})
	_, err := loadConfig()
	if err == nil {
		t.Fatal("loadConfig accepted a bad configuration")
	}
	msg := err.Error()
	for _, want := range []string{
		"AUTHGATE_UPSTREAM:", "AUTHGATE_OIDC_ISSUER_URL: required", "AUTHGATE_CLIENT_ID: required",
		"AUTHGATE_COOKIE_SECRET:", "AUTHGATE_REDIRECT_URL:", "AUTHGATE_SESSION_TTL:", "AUTHGATE_COOKIE_SECURE:",
		"AUTHGATE_LOG_FORMAT:", "AUTHGATE_TLS_CERT_FILE and AUTHGATE_TLS_KEY_FILE", "AUTHGATE_SCOPES:",
		"AUTHGATE_UPSTREAM_MAX_IDLE_CONNS:",
		`AUTHGATE_PROMPT: "none" cannot be combined`,
		"AUTHGATE_END_SESSION_URL:",
		`AUTHGATE_USER_CLAIM: "realm_access..x" has an empty path step`,
		`AUTHGATE_AUTH_PARAMS: parameter "redirect_uri" is set by authgate itself`,
		`AUTHGATE_AUTH_PARAMS: parameter "scope" is set by authgate itself (use AUTHGATE_SCOPES)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, s := range []string{secret, "topsecret-client"} {
		if strings.Contains(msg, s) {
			t.Errorf("error reveals a secret:\n%s", msg)
		}
	}
}

func TestLoadConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	cookieFile := filepath.Join(dir, "cookie")
	clientFile := filepath.Join(dir, "client")
	os.WriteFile(cookieFile, []byte(testCookieSecret+"\n"), 0o600)
	os.WriteFile(clientFile, []byte("from-file\n"), 0o600)
	env := validEnv()
	delete(env, "AUTHGATE_COOKIE_SECRET")
	env["AUTHGATE_COOKIE_SECRET_FILE"] = cookieFile
	env["AUTHGATE_CLIENT_SECRET_FILE"] = clientFile
	setEnv(t, env)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if cfg.ClientSecret != "from-file" || len(cfg.cookieKeys) != 1 {
		t.Errorf("secrets from files not read")
	}

	env["AUTHGATE_CLIENT_SECRET"] = "also-set"
	env["AUTHGATE_COOKIE_SECRET_FILE"] = filepath.Join(dir, "missing")
	setEnv(t, env)
	_, err = loadConfig()
	if err == nil || !strings.Contains(err.Error(), "AUTHGATE_CLIENT_SECRET and AUTHGATE_CLIENT_SECRET_FILE: set one") ||
		!strings.Contains(err.Error(), "AUTHGATE_COOKIE_SECRET_FILE: read secret file") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigKeyRotation(t *testing.T) {
	env := validEnv()
	other := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // another 32 bytes
	env["AUTHGATE_COOKIE_SECRET"] = testCookieSecret + ", " + other
	setEnv(t, env)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.cookieKeys) != 2 {
		t.Errorf("keys = %d, want 2", len(cfg.cookieKeys))
	}
}

func TestLoadConfigUpstreamSchemes(t *testing.T) {
	for _, tt := range []struct {
		upstream string
		ok       bool
	}{
		{"http://app:8080", true},
		{"https://app", true},
		{"h2c://grpc:50051", true},
		{"unix:///run/app.sock", true},
		{"unix://", false},
		{"http://", false},
		{"http://user:pw@app", false},
		{"app:8080", false},
	} {
		t.Run(tt.upstream, func(t *testing.T) {
			env := validEnv()
			env["AUTHGATE_UPSTREAM"] = tt.upstream
			setEnv(t, env)
			_, err := loadConfig()
			if (err == nil) != tt.ok {
				t.Errorf("loadConfig(AUTHGATE_UPSTREAM=%q) err = %v, want ok=%v", tt.upstream, err, tt.ok)
			}
		})
	}
}

// TestRunBadConfigExitsNonZero runs the command as main does.
func TestRunBadConfigExitsNonZero(t *testing.T) {
	setEnv(t, map[string]string{"AUTHGATE_COOKIE_SECRET": "bm90LWEta2V5"})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, &stdout, &stderr)
	if code == 0 {
		t.Fatal("run exited 0 with a bad configuration")
	}
	out := stderr.String()
	if strings.Count(out, "  - AUTHGATE_") < 5 {
		t.Errorf("expected one line per problem:\n%s", out)
	}
	if strings.Contains(out, "bm90LWEta2V5") {
		t.Errorf("output reveals the cookie secret:\n%s", out)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	for _, v := range configVariables() {
		if !strings.Contains(stdout.String(), v.Name) {
			t.Errorf("--help lacks %s", v.Name)
		}
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	if !strings.Contains(stdout.String(), ":4180") {
		t.Error("--help does not show defaults")
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bogus"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
}

// TestLoadConfigRedisCacheTTL: the session cache is on for a second by
// default, 0 turns it off, and values outside 0 to 1m are refused by name.
func TestLoadConfigRedisCacheTTL(t *testing.T) {
	for _, tt := range []struct {
		value string // "" leaves the variable unset
		want  time.Duration
		err   string
	}{
		{value: "", want: time.Second},
		{value: "0s", want: 0},
		{value: "0", want: 0},
		{value: "250ms", want: 250 * time.Millisecond},
		{value: "1m", want: time.Minute},
		{value: "61s", err: "AUTHGATE_REDIS_CACHE_TTL: 1m1s is outside 0 to 1m"},
		{value: "-1s", err: "AUTHGATE_REDIS_CACHE_TTL: -1s is outside 0 to 1m"},
	} {
		t.Run("value "+tt.value, func(t *testing.T) {
			extra := map[string]string{}
			if tt.value != "" {
				extra["AUTHGATE_REDIS_CACHE_TTL"] = tt.value
			}
			cfg, err := loadConfigWith(t, extra)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("loadConfig = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.RedisCacheTTL != tt.want {
				t.Errorf("RedisCacheTTL = %v, want %v", cfg.RedisCacheTTL, tt.want)
			}
		})
	}
}

func TestLoadConfigPassRoutingHeaders(t *testing.T) {
	env := validEnv()
	env["AUTHGATE_PASS_ROUTING_HEADERS"] = "X-HTTP-Method-Override, x_original_url"
	setEnv(t, env)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if got := strings.Join(cfg.PassRoutingHeaders, ","); got != "X-HTTP-Method-Override,x_original_url" {
		t.Errorf("PassRoutingHeaders = %q", got)
	}
	env["AUTHGATE_PASS_ROUTING_HEADERS"] = "X-HTTP-Method-Override,X-Forwarded-User"
	setEnv(t, env)
	_, err = loadConfig()
	if err == nil || !strings.Contains(err.Error(), "AUTHGATE_PASS_ROUTING_HEADERS:") || !strings.Contains(err.Error(), `"X-Forwarded-User"`) {
		t.Errorf("loadConfig with X-Forwarded-User in AUTHGATE_PASS_ROUTING_HEADERS: %v, want an error naming the variable and the header", err)
	}
}

func TestLoadConfigClientAuthMethod(t *testing.T) {
	tests := []struct {
		name, method, secret string
		want                 string // substring of the error; empty: valid
	}{
		{name: "post with a secret", method: "client_secret_post", secret: "s3cret"},
		{name: "basic with a secret", method: "client_secret_basic", secret: "s3cret"},
		{name: "post without a secret", method: "client_secret_post", want: "AUTHGATE_CLIENT_AUTH_METHOD: client_secret_post needs AUTHGATE_CLIENT_SECRET"},
		{name: "unknown method", method: "client_secret_jwt", secret: "s3cret", want: `AUTHGATE_CLIENT_AUTH_METHOD: "client_secret_jwt" is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfigWith(t, map[string]string{"AUTHGATE_CLIENT_AUTH_METHOD": tt.method, "AUTHGATE_CLIENT_SECRET": tt.secret})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("loadConfig: %v", err)
			case tt.want == "" && cfg.clientAuthMethods()[0] != tt.method:
				t.Errorf("clientAuthMethods() = %q, want only %q", cfg.clientAuthMethods(), tt.method)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("loadConfig error = %v, want one containing %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Errorf("loadConfig error %q shows the secret", err)
			}
		})
	}
}
