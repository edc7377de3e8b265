package idp_test

import (
	"errors"
	"testing"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// TestCheckResponseIssuer is RFC 9207 section 2.4: with the discovery flag,
// iss must be present and equal; without it, iss is optional but must still
// match when present.
func TestCheckResponseIssuer(t *testing.T) {
	tests := []struct {
		name       string
		advertised bool
		iss        string // "" with present false: absent
		present    bool
		wantErr    bool
	}{
		{name: "advertised, matching", advertised: true, iss: "ISSUER", present: true},
		{name: "advertised, absent", advertised: true, wantErr: true},
		{name: "advertised, empty", advertised: true, iss: "", present: true, wantErr: true},
		{name: "advertised, another issuer", advertised: true, iss: "https://evil.example", present: true, wantErr: true},
		{name: "advertised, trailing slash differs", advertised: true, iss: "ISSUER/", present: true, wantErr: true},
		{name: "not advertised, absent", advertised: false},
		{name: "not advertised, matching", advertised: false, iss: "ISSUER", present: true},
		{name: "not advertised, another issuer", advertised: false, iss: "https://evil.example", present: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{ResponseIss: tt.advertised})
			p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger()})
			iss := tt.iss
			if iss == "ISSUER" {
				iss = s.URL
			} else if iss == "ISSUER/" {
				iss = s.URL + "/"
			}
			err := p.CheckResponseIssuer(iss, tt.present)
			if tt.wantErr != errors.Is(err, idp.ErrIssuerMismatch) || (!tt.wantErr && err != nil) {
				t.Fatalf("CheckResponseIssuer(%q, %t) = %v, want error %t", iss, tt.present, err, tt.wantErr)
			}
		})
	}
}

func TestCheckResponseIssuerBeforeDiscovery(t *testing.T) {
	p, err := idp.New(idp.Options{IssuerURL: "http://127.0.0.1:1/", ClientID: "c", RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckResponseIssuer("x", true); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("CheckResponseIssuer before discovery = %v, want ErrNotReady", err)
	}
}
