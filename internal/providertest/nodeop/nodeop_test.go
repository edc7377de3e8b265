package nodeop

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestStart: the provider serves discovery for its issuer, answers
// introspection, and a rotated key is published first.
func TestStart(t *testing.T) {
	p := Start(t, Options{})
	var meta struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, p.Issuer+"/.well-known/openid-configuration", &meta)
	if meta.Issuer != p.Issuer {
		t.Fatalf("discovery issuer = %q, want %q", meta.Issuer, p.Issuer)
	}
	if got := p.Introspect("not-a-token"); got.Active {
		t.Errorf("Introspect(garbage).Active = true")
	}
	kid := p.RotateKey("ES256")
	var jwks struct{ Keys []struct{ Kid string } }
	getJSON(t, meta.JWKSURI, &jwks)
	if len(jwks.Keys) < 2 || jwks.Keys[0].Kid != kid {
		t.Errorf("JWKS after rotation = %+v, want %q first", jwks.Keys, kid)
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
