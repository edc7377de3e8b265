package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/idp/idptest"
)

// writeClientKey writes a fresh P-256 key as PKCS #8 PEM and returns the
// file and the key.
func writeClientKey(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writePKCS8(t, key), key
}

// writePKCS8 writes key as a PKCS #8 PEM file and returns its path.
func writePKCS8(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestLoadConfigClientKey(t *testing.T) {
	keyFile, _ := writeClientKey(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string
		wantKID string
	}{
		{name: "key file", env: map[string]string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": keyFile}},
		{name: "key file with kid", env: map[string]string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": keyFile, "AUTHGATE_CLIENT_KEY_ID": "k1"}, wantKID: "k1"},
		{name: "key and secret", env: map[string]string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": keyFile, "AUTHGATE_CLIENT_SECRET": "s"},
			wantErr: []string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE and AUTHGATE_CLIENT_SECRET"}},
		{name: "missing file and kid alone are both listed", env: map[string]string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": "/nonexistent/key.pem", "AUTHGATE_CLIENT_SECRET": "s"},
			wantErr: []string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE: read key file", "AUTHGATE_CLIENT_PRIVATE_KEY_FILE and AUTHGATE_CLIENT_SECRET"}},
		{name: "not a key", env: map[string]string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": junk}, wantErr: []string{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE: " + junk + ": no PEM block"}},
		{name: "kid without key", env: map[string]string{"AUTHGATE_CLIENT_KEY_ID": "k1"}, wantErr: []string{"AUTHGATE_CLIENT_KEY_ID: set without AUTHGATE_CLIENT_PRIVATE_KEY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfigWith(t, tt.env)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("loadConfig accepted the configuration")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.clientKey == nil {
				t.Fatal("client key not loaded")
			}
			if tt.wantKID != "" && cfg.clientKey.KeyID() != tt.wantKID {
				t.Errorf("KeyID() = %q, want %q", cfg.clientKey.KeyID(), tt.wantKID)
			}
		})
	}
}

// TestPrivateKeyJWTEndToEnd: authgate configured with a key file logs in,
// refreshes and revokes at sign-out with client assertions that the
// provider verifies against the public key, and never sends a secret.
func TestPrivateKeyJWTEndToEnd(t *testing.T) {
	keyFile, key := writeClientKey(t)
	g, s := startFakeGate(t, idptest.Options{ClientSecret: "unused", ClientPublicKey: key.Public()},
		withoutEnv("AUTHGATE_CLIENT_SECRET"), withEnv("AUTHGATE_CLIENT_PRIVATE_KEY_FILE", keyFile))
	b := newBrowser(t)
	if resp := b.navigate(g.URL + "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %.200q", resp.StatusCode, readBody(t, resp))
	}
	g.clock.Advance(10 * 60e9) // past the 5-minute access token: the next request refreshes
	if resp := b.navigate(g.URL + "/again"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after expiry: %d %.200q", resp.StatusCode, readBody(t, resp))
	}
	if n := s.TokenCalls("refresh_token"); n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth2/sign_out", nil)
	req.Header.Set("Origin", g.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(s.Revoked()) != 1 {
		t.Fatalf("revoked = %d tokens, want 1", len(s.Revoked()))
	}
	got := s.Assertions()
	var endpoints []string
	for _, a := range got {
		if a.Err != nil {
			t.Errorf("%s assertion refused: %v", a.Endpoint, a.Err)
		}
		endpoints = append(endpoints, a.Endpoint)
	}
	if strings.Join(endpoints, ",") != "token,token,revoke" {
		t.Errorf("assertions at %v, want token (code), token (refresh), revoke", endpoints)
	}
}
