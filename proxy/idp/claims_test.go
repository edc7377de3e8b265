package idp

import (
	"encoding/json"
	"testing"
)

func TestMergeClaims(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	idToken := map[string]json.RawMessage{
		"sub": raw(`"u1"`), "email": raw(`"id@example.com"`), "exp": raw(`1`), "iat": raw(`1`), "nbf": raw(`1`),
		"nonce": raw(`"n"`), "at_hash": raw(`"h"`), "c_hash": raw(`"c"`), "jti": raw(`"j"`), "acr": raw(`"mfa"`),
		"realm_access": raw(`{"roles":["ops"]}`),
	}
	userinfo := map[string]json.RawMessage{"email": raw(`"info@example.com"`), "family_name": raw(`"Doe"`), "sub": raw(`"u1"`)}
	got, err := mergeClaims(idToken, userinfo)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatalf("mergeClaims() = %q, not a JSON object: %v", got, err)
	}
	if m["email"] != "id@example.com" {
		t.Errorf("email = %v, want the ID token's", m["email"])
	}
	if m["family_name"] != "Doe" || m["acr"] != "mfa" || m["sub"] != "u1" || m["realm_access"] == nil {
		t.Errorf("merged claims %v lack family_name, acr, sub or realm_access", m)
	}
	for _, k := range validationClaims {
		if _, ok := m[k]; ok {
			t.Errorf("merged claims keep %q", k)
		}
	}
}
