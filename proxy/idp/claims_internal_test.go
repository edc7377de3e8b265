package idp

import (
	"encoding/json"
	"testing"
)

func TestLookupClaim(t *testing.T) {
	claims := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(`{
		"groups": ["g"],
		"cognito:groups": ["c"],
		"https://example.com/roles": ["auth0"],
		"https://example.com": {"roles": ["shadowed"]},
		"realm_access": {"roles": ["r1", "r2"]},
		"resource_access": {"my.app": {"roles": ["dotted-client"]}, "web": {"roles": "one"}},
		"a": {"b.c": {"d": "deep"}},
		"scalar": "x"
	}`), &claims); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string // raw JSON; empty means not found
	}{
		{"groups", `["g"]`},
		{"cognito:groups", `["c"]`},
		{"https://example.com/roles", `["auth0"]`},
		{"realm_access.roles", `["r1", "r2"]`},
		{"resource_access.my.app.roles", `["dotted-client"]`},
		{"resource_access.web.roles", `"one"`},
		{"a.b.c.d", `"deep"`},
		{"realm_access", `{"roles": ["r1", "r2"]}`},
		{"realm_access.missing", ""},
		{"scalar.x", ""},
		{"missing", ""},
		{"", ""},
		{".", ""},
		{"realm_access.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := lookupClaim(claims, tt.path)
			if ok != (tt.want != "") || (ok && string(got) != tt.want) {
				t.Errorf("lookupClaim(%q) = %s, %t; want %s", tt.path, got, ok, tt.want)
			}
		})
	}
}

func TestCheckNumericDates(t *testing.T) {
	tests := []struct {
		json    string
		wantErr bool
	}{
		{`{"exp": 1700000000, "iat": 1699999000, "nbf": 1699999000}`, false},
		{`{"exp": 1700000000.5}`, false},
		{`{}`, false},
		{`{"exp": "9999999999"}`, true},
		{`{"iat": "1700000000"}`, true},
		{`{"nbf": "0"}`, true},
		{`{"exp": null}`, true},
		{`{"exp": true}`, true},
		{`{"exp": [1]}`, true},
		{`{"exp": {"n": 1}}`, true},
	}
	for _, tt := range tests {
		var claims map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tt.json), &claims); err != nil {
			t.Fatal(err)
		}
		if err := checkNumericDates(claims); (err != nil) != tt.wantErr {
			t.Errorf("checkNumericDates(%s) = %v, want error %t", tt.json, err, tt.wantErr)
		}
	}
}
