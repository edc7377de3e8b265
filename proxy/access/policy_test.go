package access

import (
	"strings"
	"testing"
)

func ptr(b bool) *bool { return &b }

func TestPolicyAllow(t *testing.T) {
	type lists struct{ emails, domains, groups []string }
	emailsOnly := lists{emails: []string{"Alice@Example.com"}}
	domainsOnly := lists{domains: []string{"example.com", "@Corp.Example"}}
	groupsOnly := lists{groups: []string{"admins"}}
	all := lists{emails: []string{"bob@other.org"}, domains: []string{"example.com"}, groups: []string{"admins"}}
	cases := []struct {
		name       string
		lists      lists
		subject    Subject
		want       bool
		wantReason string
	}{
		{"empty policy admits anyone", lists{}, Subject{}, true, "no restriction configured"},
		{"empty policy admits unverified email", lists{}, Subject{Email: "x@evil.com", EmailVerified: ptr(false)}, true, "no restriction configured"},

		{"email listed", emailsOnly, Subject{Email: "alice@example.com"}, true, "email allowed"},
		{"email case-insensitive", emailsOnly, Subject{Email: "ALICE@EXAMPLE.COM"}, true, "email allowed"},
		{"email verified true", emailsOnly, Subject{Email: "alice@example.com", EmailVerified: ptr(true)}, true, "email allowed"},
		{"email verified false", emailsOnly, Subject{Email: "alice@example.com", EmailVerified: ptr(false)}, false, "email not verified"},
		{"email missing", emailsOnly, Subject{}, false, "email claim missing"},
		{"other email", emailsOnly, Subject{Email: "mallory@example.com"}, false, "email and domain not allowed"},
		{"email with trailing space", emailsOnly, Subject{Email: "alice@example.com "}, false, "email malformed"},
		{"email with two at signs", emailsOnly, Subject{Email: "alice@example.com@evil.com"}, false, "email malformed"},
		{"email with empty local part", emailsOnly, Subject{Email: "@example.com"}, false, "email malformed"},
		{"email with kelvin sign", lists{emails: []string{"k@example.com"}}, Subject{Email: "\u212a@example.com"}, false, "email and domain not allowed"},

		{"domain listed", domainsOnly, Subject{Email: "anyone@example.com"}, true, "email domain allowed"},
		{"domain listed with at sign", domainsOnly, Subject{Email: "anyone@corp.example"}, true, "email domain allowed"},
		{"domain case-insensitive", domainsOnly, Subject{Email: "anyone@EXAMPLE.Com"}, true, "email domain allowed"},
		{"domain as prefix of evil domain", domainsOnly, Subject{Email: "a@example.com.evil.com"}, false, "email and domain not allowed"},
		{"domain glued to evil label", domainsOnly, Subject{Email: "a@evilexample.com"}, false, "email and domain not allowed"},
		{"domain with hyphenated evil label", domainsOnly, Subject{Email: "a@evil-example.com"}, false, "email and domain not allowed"},
		{"subdomain not matched", domainsOnly, Subject{Email: "a@sub.example.com"}, false, "email and domain not allowed"},
		{"second at sign hides domain (GHSA-c5c4-8r6x-56w3)", domainsOnly, Subject{Email: "attacker@evil.com@example.com"}, false, "email malformed"},
		{"quoted local part with at sign", domainsOnly, Subject{Email: `"a@evil.com"@example.com`}, false, "email malformed"},
		{"domain trailing dot", domainsOnly, Subject{Email: "a@example.com."}, false, "email malformed"},
		{"domain with kelvin sign", lists{domains: []string{"kexample.com"}}, Subject{Email: "a@\u212aexample.com"}, false, "email malformed"},
		{"domain with fullwidth letters", domainsOnly, Subject{Email: "a@ｅxample.com"}, false, "email malformed"},
		{"local part with newline", domainsOnly, Subject{Email: "a\n@example.com"}, false, "email malformed"},
		{"local part with zero-width space", domainsOnly, Subject{Email: "a\u200b@example.com"}, false, "email malformed"},
		{"domain unverified", domainsOnly, Subject{Email: "a@example.com", EmailVerified: ptr(false)}, false, "email not verified"},

		{"group listed", groupsOnly, Subject{Groups: []string{"users", "admins"}, GroupsKnown: true}, true, "group allowed"},
		{"group case-sensitive", groupsOnly, Subject{Groups: []string{"Admins"}, GroupsKnown: true}, false, "no allowed group"},
		{"groups empty", groupsOnly, Subject{Groups: nil, GroupsKnown: true}, false, "no allowed group"},
		{"groups claim missing", groupsOnly, Subject{Groups: []string{"admins"}, GroupsKnown: false}, false, "groups claim missing"},
		{"groups configured, email irrelevant", groupsOnly, Subject{Email: "a@example.com", GroupsKnown: true}, false, "no allowed group"},

		{"OR: group admits", all, Subject{Email: "x@nowhere.net", Groups: []string{"admins"}, GroupsKnown: true}, true, "group allowed"},
		{"OR: email admits without group", all, Subject{Email: "bob@other.org", GroupsKnown: true}, true, "email allowed"},
		{"OR: domain admits with groups missing", all, Subject{Email: "x@example.com"}, true, "email domain allowed"},
		{"OR: nothing admits", all, Subject{Email: "x@nowhere.net", Groups: []string{"users"}, GroupsKnown: true}, false, "no allowed group; email and domain not allowed"},
		{"OR: groups missing and unverified email", all, Subject{Email: "x@example.com", EmailVerified: ptr(false)}, false, "groups claim missing; email not verified"},
		{"OR: groups missing and no email", all, Subject{}, false, "groups claim missing; email claim missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPolicy(tc.lists.emails, tc.lists.domains, tc.lists.groups)
			if err != nil {
				t.Fatalf("NewPolicy() error = %v", err)
			}
			got, reason := p.Allow(tc.subject)
			if got != tc.want || reason != tc.wantReason {
				t.Errorf("Allow(%+v) = %v, %q, want %v, %q", tc.subject, got, reason, tc.want, tc.wantReason)
			}
			if strings.Contains(reason, "@") {
				t.Errorf("Allow() reason %q contains an email address", reason)
			}
		})
	}
}

func TestPolicyZero(t *testing.T) {
	for name, p := range map[string]*Policy{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if ok, reason := p.Allow(Subject{}); !ok {
				t.Errorf("Allow(Subject{}) = false, %q, want true", reason)
			}
		})
	}
}

func TestNewPolicyErrors(t *testing.T) {
	cases := []struct {
		name                    string
		emails, domains, groups []string
		wantErr                 string
	}{
		{"empty email", []string{""}, nil, nil, `email ""`},
		{"email without at", []string{"alice"}, nil, nil, `email "alice"`},
		{"email with two at signs", []string{"a@b@example.com"}, nil, nil, "want local@domain.tld"},
		{"email with space", []string{"a b@example.com"}, nil, nil, "want local@domain.tld"},
		{"email with bad domain", []string{"a@exa mple.com"}, nil, nil, "want local@domain.tld"},
		{"empty domain", nil, []string{""}, nil, `domain ""`},
		{"wildcard domain", nil, []string{"*"}, nil, `domain "*"`},
		{"subdomain rule", nil, []string{".example.com"}, nil, "subdomain rules are not supported"},
		{"subdomain rule with at", nil, []string{"@.example.com"}, nil, "subdomain rules are not supported"},
		{"domain with trailing dot", nil, []string{"example.com."}, nil, "no trailing dot"},
		{"domain with path", nil, []string{"example.com/x"}, nil, "want domain.tld"},
		{"domain with two at signs", nil, []string{"@@example.com"}, nil, "want domain.tld"},
		{"non-ASCII domain", nil, []string{"exämple.com"}, nil, "want domain.tld"},
		{"empty group", nil, nil, []string{""}, `group ""`},
		{"group with space around", nil, nil, []string{" admins"}, "surrounding space"},
		{"group with control", nil, nil, []string{"ad\nmins"}, "control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPolicy(tc.emails, tc.domains, tc.groups)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewPolicy() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	_, err := NewPolicy([]string{"bad"}, []string{"*"}, []string{""})
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("NewPolicy(three bad lists) error = %v, want all three problems joined", err)
	}
}

func BenchmarkPolicyAllow(b *testing.B) {
	p, err := NewPolicy([]string{"a@example.com"}, []string{"example.org"}, []string{"admins"})
	if err != nil {
		b.Fatalf("NewPolicy() error = %v", err)
	}
	s := Subject{Email: "x@example.org", Groups: []string{"users"}, GroupsKnown: true}
	for b.Loop() {
		if ok, _ := p.Allow(s); !ok {
			b.Fatalf("Allow() = false, want true")
		}
	}
}
