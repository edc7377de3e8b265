package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// issueRoutesYAML is the example of issue 14, as the README shows it.
const issueRoutesYAML = `- match: "/admin/"
  allow: '"admins" in groups'
- match: "GET /reports/"
  allow: 'email.endsWith("@example.com") || "auditors" in groups'
- match: "/"
  allow: 'true'
`

func TestLoadConfigRoutes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(issueRoutesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    map[string]string
		labels string // the compiled routes' labels; "" for no routes
		claims bool
		want   []string // error fragments; none for a valid configuration
	}{
		{name: "file", env: map[string]string{"AUTHGATE_ROUTES_FILE": file}, labels: "0,1,2"},
		{name: "inline flow syntax", env: map[string]string{"AUTHGATE_ROUTES": `[{match: /admin/, allow: '"admins" in groups', name: admin}, {match: /, allow: 'has(claims.tenant)'}]`},
			labels: "admin,1", claims: true},
		{name: "inline JSON", env: map[string]string{"AUTHGATE_ROUTES": `[{"match": "GET /status", "public": true}]`}, labels: "0"},
		{name: "both sources", env: map[string]string{"AUTHGATE_ROUTES_FILE": file, "AUTHGATE_ROUTES": "[]"},
			want: []string{"AUTHGATE_ROUTES and AUTHGATE_ROUTES_FILE: set one, not both"}},
		{name: "with legacy variables", env: map[string]string{"AUTHGATE_ROUTES_FILE": file, "AUTHGATE_PUBLIC_PATHS": "/healthz", "AUTHGATE_ALLOWED_GROUPS": "admins"},
			want: []string{"AUTHGATE_ROUTES_FILE and AUTHGATE_PUBLIC_PATHS, AUTHGATE_ALLOWED_GROUPS: routes replace"}},
		{name: "missing file", env: map[string]string{"AUTHGATE_ROUTES_FILE": file + ".missing"}, want: []string{"AUTHGATE_ROUTES_FILE: read routes"}},
		{name: "every bad route listed", env: map[string]string{"AUTHGATE_ROUTES": `[{match: /a/, allow: '"x" in grups'}, {name: api, match: /b/, allow: 'request.pth == "/"'}, {match: /c}]`},
			want: []string{"AUTHGATE_ROUTES: route 0: allow: line 1, column 8: undeclared reference to 'grups'",
				"AUTHGATE_ROUTES: route 1 (api): allow: line 1, column 8:", "AUTHGATE_ROUTES: route 2: needs public: true or an allow expression"}},
		{name: "unknown key", env: map[string]string{"AUTHGATE_ROUTES": `[{match: /, alow: 'true'}]`}, want: []string{"AUTHGATE_ROUTES: parse routes", "alow"}},
		{name: "empty list", env: map[string]string{"AUTHGATE_ROUTES": `[]`}, want: []string{"AUTHGATE_ROUTES: parse routes: no routes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfigWith(t, tt.env)
			if len(tt.want) > 0 {
				if err == nil {
					t.Fatalf("loadConfig() error = nil, want %q", tt.want)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("loadConfig() error = %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig() error = %v", err)
			}
			if got := strings.Join(cfg.routes.Labels(), ","); got != tt.labels {
				t.Errorf("routes = %q, want %q", got, tt.labels)
			}
			if cfg.routes.UsesClaims() != tt.claims {
				t.Errorf("UsesClaims() = %v, want %v", cfg.routes.UsesClaims(), tt.claims)
			}
			if cfg.publicPaths != nil || cfg.policy != nil {
				t.Errorf("routes configured, but public paths %v and policy %v kept", cfg.publicPaths, cfg.policy)
			}
		})
	}
}
