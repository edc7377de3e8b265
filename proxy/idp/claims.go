package idp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// maxClaimDepth bounds how deep a claim path may reach into nested objects.
const maxClaimDepth = 8

// lookupClaim finds the claim named by path in claims. The whole path is
// first tried as a top-level name, so that names containing dots (Auth0's
// namespaced claims such as "https://example.com/roles") and colons
// (Cognito's "cognito:groups") work as given. Otherwise path is read as
// dot-separated steps into nested objects (Keycloak's "realm_access.roles",
// "resource_access.<client>.roles"), where each step may itself contain
// dots: at every level the longer names are tried first.
func lookupClaim(claims map[string]json.RawMessage, path string) (json.RawMessage, bool) {
	return lookupIn(claims, path, 0)
}

func lookupIn(obj map[string]json.RawMessage, path string, depth int) (json.RawMessage, bool) {
	if v, ok := obj[path]; ok {
		return v, true
	}
	if depth >= maxClaimDepth {
		return nil, false
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		raw, ok := obj[path[:i]]
		if !ok || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			continue
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			continue
		}
		if v, ok := lookupIn(inner, path[i+1:], depth+1); ok {
			return v, true
		}
	}
	return nil, false
}

// stringClaim returns the claim at path when it is a JSON string.
func stringClaim(claims map[string]json.RawMessage, path string) string {
	raw, ok := lookupClaim(claims, path)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// groupsOverage reports Microsoft Entra ID's group overage: with more groups
// than fit in a token, Entra leaves the groups claim out and names it in
// _claim_names (a distributed claim, OpenID Connect Core 5.6.2) instead.
func groupsOverage(claims map[string]json.RawMessage, groupsClaim string) bool {
	if _, present := lookupClaim(claims, groupsClaim); present {
		return false
	}
	var names map[string]json.RawMessage
	if raw, ok := claims["_claim_names"]; !ok || json.Unmarshal(raw, &names) != nil {
		return false
	}
	_, ok := names[groupsClaim]
	return ok
}

// checkNumericDates refuses "exp", "iat" and "nbf" that are present but not
// JSON numbers. RFC 7519 section 2 defines NumericDate as a JSON number;
// go-oidc decodes dates through json.Number, which also takes a quoted
// string such as "9999999999".
func checkNumericDates(claims map[string]json.RawMessage) error {
	for _, name := range [...]string{"exp", "iat", "nbf"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			return fmt.Errorf("%s is not a JSON number (NumericDate, RFC 7519 section 2)", name)
		}
	}
	return nil
}
