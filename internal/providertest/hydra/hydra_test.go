package hydra

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestStart: Hydra serves discovery for its issuer, registers a client,
// answers introspection, and publishes a rotated key.
func TestStart(t *testing.T) {
	h := Start(t, Options{})
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, h.Issuer+"/.well-known/openid-configuration", &meta)
	if meta.Issuer != h.Issuer {
		t.Fatalf("discovery issuer = %q, want %q", meta.Issuer, h.Issuer)
	}
	if id := h.Register(Client{Secret: "a-secret-of-some-length", RedirectURIs: []string{"http://127.0.0.1:1/cb"}}); id == "" {
		t.Error("Register returned no client_id")
	}
	if got := h.Introspect("not-a-token"); got.Active {
		t.Errorf("Introspect(garbage).Active = true")
	}
	kid := h.RotateKey()
	var jwks struct{ Keys []struct{ Kid string } }
	getJSON(t, meta.JWKSURI, &jwks)
	found := false
	for _, k := range jwks.Keys {
		found = found || k.Kid == kid
	}
	if !found {
		t.Errorf("JWKS after rotation = %+v, want %q in it", jwks.Keys, kid)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}
