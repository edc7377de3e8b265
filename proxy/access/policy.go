package access

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Policy decides which authenticated users may pass. It is built by
// NewPolicy from three allow-lists. The zero value and a nil *Policy have no
// list configured and so admit every authenticated user.
//
// Semantics:
//   - No list configured: every authenticated user is admitted.
//   - Otherwise a user is admitted when ANY configured list admits them (OR):
//     their email is in the email list, or their email's domain is in the
//     domain list, or one of their groups is in the group list.
//     oauth2-proxy ORs its email-domain and authenticated-emails checks but
//     ANDs allowed groups with them (issue oauth2-proxy#2462 asks for OR);
//     authgate uses OR throughout because each list is a complete statement
//     of who is welcome, and an operator who wants AND can narrow the lists.
//   - An email counts only when EmailVerified is nil (the IdP sends no such
//     claim) or true, and only when it has exactly one "@" with a non-empty
//     local part and a valid ASCII domain ("a@evil.com@company.com" never
//     counts, oauth2-proxy GHSA-c5c4-8r6x-56w3). Comparison is ASCII
//     case-insensitive; non-ASCII letters are never folded.
//   - Domains match exactly at the "@" boundary: "example.com" admits
//     "a@example.com" and "a@EXAMPLE.com" but not "a@sub.example.com" nor
//     "a@example.com.evil.com". Subdomains must be listed one by one.
//   - Groups match exactly and case-sensitively (IdPs send group names or
//     IDs verbatim). A group rule only counts when the groups claim arrived
//     (Subject.GroupsKnown); an absent claim is not an empty membership.
//   - A restriction that cannot be evaluated (no usable email, groups claim
//     missing) does not admit; the user is admitted only if another list
//     does.
type Policy struct {
	emails  map[string]bool
	domains map[string]bool
	groups  map[string]bool
}

// Subject is what Policy.Allow knows about an authenticated user. Its zero
// value has no email and unknown groups: it passes only an empty policy.
type Subject struct {
	// Email is the email claim, "" when absent.
	Email string
	// EmailVerified is the email_verified claim; nil when the IdP did not
	// send it, in which case the email is trusted as the IdP's own.
	EmailVerified *bool
	// Groups is the groups claim.
	Groups []string
	// GroupsKnown is true when the groups claim arrived (even if empty);
	// false when it never did, e.g. an IdP that leaves it out of large
	// tokens. Group rules deny when it is false.
	GroupsKnown bool
}

// NewPolicy builds a Policy. Emails and domains are lower-cased (ASCII);
// a domain may be written with or without a leading "@". Empty entries,
// malformed emails or domains, a "*" wildcard, and domains with a leading
// "." (authgate does not match subdomains; list each domain) are errors, as
// are groups that are empty or have leading or trailing white space or
// control characters. All-empty lists make a policy that admits every
// authenticated user.
func NewPolicy(emails, domains, groups []string) (*Policy, error) {
	p := &Policy{}
	var errs []error
	for _, e := range emails {
		local, domain, ok := splitEmail(e)
		if !ok {
			errs = append(errs, fmt.Errorf("email %q: want local@domain.tld", e))
			continue
		}
		if p.emails == nil {
			p.emails = map[string]bool{}
		}
		p.emails[asciiLower(local)+"@"+domain] = true
	}
	for _, d := range domains {
		name := asciiLower(strings.TrimPrefix(d, "@"))
		switch {
		case strings.HasPrefix(name, "."):
			errs = append(errs, fmt.Errorf("domain %q: subdomain rules are not supported; list each domain exactly", d))
		case !validDNSName(name):
			errs = append(errs, fmt.Errorf("domain %q: want domain.tld (no wildcard, no trailing dot)", d))
		default:
			if p.domains == nil {
				p.domains = map[string]bool{}
			}
			p.domains[name] = true
		}
	}
	for _, g := range groups {
		if g == "" || strings.TrimFunc(g, unicode.IsSpace) != g || strings.IndexFunc(g, unicode.IsControl) >= 0 || !utf8.ValidString(g) {
			errs = append(errs, fmt.Errorf("group %q: want a non-empty name without surrounding space or control characters", g))
			continue
		}
		if p.groups == nil {
			p.groups = map[string]bool{}
		}
		p.groups[g] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("parse policy: %w", err)
	}
	return p, nil
}

// splitEmail returns the local part and the lower-cased domain of an email
// address, requiring exactly one "@", a non-empty local part of visible
// characters, and a domain that validDNSName accepts.
func splitEmail(e string) (local, domain string, ok bool) {
	local, domain, found := strings.Cut(e, "@")
	if !found || local == "" || strings.IndexByte(domain, '@') >= 0 || !utf8.ValidString(local) {
		return "", "", false
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", "", false
		}
	}
	domain = asciiLower(domain)
	if !validDNSName(domain) {
		return "", "", false
	}
	return local, domain, true
}

// Allow reports whether s may pass, and a short reason for the log. The
// reason never contains the email address or tokens.
func (p *Policy) Allow(s Subject) (bool, string) {
	if p == nil || len(p.emails) == 0 && len(p.domains) == 0 && len(p.groups) == 0 {
		return true, "no restriction configured"
	}
	var why []string
	if len(p.groups) > 0 {
		if !s.GroupsKnown {
			why = append(why, "groups claim missing")
		} else {
			for _, g := range s.Groups {
				if p.groups[g] {
					return true, "group allowed"
				}
			}
			why = append(why, "no allowed group")
		}
	}
	if len(p.emails) > 0 || len(p.domains) > 0 {
		local, domain, ok := splitEmail(s.Email)
		switch {
		case s.Email == "":
			why = append(why, "email claim missing")
		case s.EmailVerified != nil && !*s.EmailVerified:
			why = append(why, "email not verified")
		case !ok:
			why = append(why, "email malformed")
		case p.emails[asciiLower(local)+"@"+domain]:
			return true, "email allowed"
		case p.domains[domain]:
			return true, "email domain allowed"
		default:
			why = append(why, "email and domain not allowed")
		}
	}
	return false, strings.Join(why, "; ")
}
