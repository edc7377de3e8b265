package session

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Realistic token shapes for cookie sizes: the claims, lengths and
// randomness of what Entra ID, Keycloak and Okta issue. The signatures are
// random bytes of the right length (RS256 with a 2048-bit key: 256 bytes):
// only their size and entropy matter here, nothing verifies them.

// rng is deterministic so that sizes are reproducible.
func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// incompressible returns n random bytes: an opaque
// token that compression cannot shrink, so tests about chunking still get
// chunks.
func incompressible(n int) string {
	return string(randBytes(newRNG(uint64(n)), n))
}

func guid(r *rand.Rand) string {
	b := randBytes(r, 16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func opaque(r *rand.Rand, n int) string {
	return base64.RawURLEncoding.EncodeToString(randBytes(r, n))[:n]
}

// jwt builds header.payload.signature with a random 256-byte signature.
func jwt(r *rand.Rand, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." +
		base64.RawURLEncoding.EncodeToString(randBytes(r, 256))
}

// tokenShape is a realistic session: ID token, access token, refresh
// token and the groups authgate keeps.
type tokenShape struct {
	name string
	make func(now time.Time) *Session
}

var tokenShapes = []tokenShape{
	{"entra-200-guids", func(now time.Time) *Session { return entraSession(now, 200) }},
	{"entra-50-guids", func(now time.Time) *Session { return entraSession(now, 50) }},
	{"keycloak-150-roles", keycloakSession},
	{"okta-100-groups", oktaSession},
}

func baseSession(now time.Time, sub, email string, groups []string) *Session {
	v := true
	return &Session{
		ID: "dGhpcyBpcyBhIHNlc3Npb24", Subject: sub, Email: email, EmailVerified: &v,
		PreferredUsername: email, Name: "Jane Doe", Groups: groups,
		Expiry: now.Add(time.Hour), IssuedAt: now, ExpiresAt: now.Add(168 * time.Hour), TokenIssuedAt: now,
	}
}

// entraSession: Entra ID v2.0 ID token and v1.0 access token for an API,
// both with the same n group object ids, and an opaque refresh token.
func entraSession(now time.Time, n int) *Session {
	r := newRNG(1)
	tid, oid, client, api := guid(r), guid(r), guid(r), guid(r)
	groups := make([]string, n)
	for i := range groups {
		groups[i] = guid(r)
	}
	iat := now.Unix()
	sub := opaque(r, 43)
	kid := opaque(r, 27)
	idt := jwt(r, map[string]any{"typ": "JWT", "alg": "RS256", "kid": kid}, map[string]any{
		"aud": client, "iss": "https://login.microsoftonline.com/" + tid + "/v2.0",
		"iat": iat, "nbf": iat, "exp": iat + 3600, "aio": opaque(r, 180), "email": "jane.doe@contoso.com",
		"groups": groups, "name": "Jane Doe", "nonce": opaque(r, 22), "oid": oid,
		"preferred_username": "jane.doe@contoso.com", "rh": "0.A" + opaque(r, 60) + ".", "sid": guid(r),
		"sub": sub, "tid": tid, "uti": opaque(r, 22), "ver": "2.0",
	})
	at := jwt(r, map[string]any{"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid}, map[string]any{
		"aud": "api://" + api, "iss": "https://sts.windows.net/" + tid + "/",
		"iat": iat, "nbf": iat, "exp": iat + 4500, "acr": "1", "aio": opaque(r, 260), "amr": []string{"pwd", "mfa"},
		"appid": client, "appidacr": "1", "family_name": "Doe", "given_name": "Jane", "groups": groups,
		"ipaddr": "203.0.113.7", "name": "Jane Doe", "oid": oid, "rh": "0.A" + opaque(r, 60) + ".",
		"scp": "access_as_user", "sub": opaque(r, 43), "tid": tid, "unique_name": "jane.doe@contoso.com",
		"upn": "jane.doe@contoso.com", "uti": opaque(r, 22), "ver": "1.0",
	})
	s := baseSession(now, sub, "jane.doe@contoso.com", groups)
	s.IDToken, s.AccessToken = idt, at
	s.RefreshToken = "1.A" + opaque(r, 1100) // opaque, encrypted by Entra
	s.IDPSessionID = guid(r)
	return s
}

// keycloakSession: Keycloak 26 tokens for a realm with 150 roles (realm
// and client roles in the access token) and 40 groups (group mapper in
// both tokens); its refresh token is an HS512 JWT.
func keycloakSession(now time.Time) *Session {
	r := newRNG(2)
	var realmRoles, clientRoles, groups []string
	for i := range 100 {
		realmRoles = append(realmRoles, fmt.Sprintf("%s-%s", []string{"orders", "billing", "catalog", "reports", "users"}[i%5], []string{"read", "write", "admin", "export"}[i%4])+fmt.Sprint(i/20))
	}
	for i := range 50 {
		clientRoles = append(clientRoles, fmt.Sprintf("feature-%02d-%s", i, []string{"view", "edit"}[i%2]))
	}
	for i := range 40 {
		groups = append(groups, fmt.Sprintf("/org/%s/team-%02d", []string{"engineering", "sales", "support", "finance"}[i%4], i))
	}
	iat := now.Unix()
	iss := "https://sso.example.com/realms/corp"
	sub, sid := guid(r), guid(r)
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": opaque(r, 43)}
	common := map[string]any{"exp": iat + 300, "iat": iat, "auth_time": iat, "jti": "onrtac:" + guid(r), "iss": iss,
		"sub": sub, "azp": "authgate", "sid": sid, "acr": "1", "email_verified": true, "name": "Jane Doe",
		"preferred_username": "jdoe", "given_name": "Jane", "family_name": "Doe", "email": "jane.doe@example.com", "groups": groups}
	id := map[string]any{"aud": "authgate", "typ": "ID", "nonce": opaque(r, 22), "at_hash": opaque(r, 22)}
	acc := map[string]any{"aud": []string{"orders-api", "account"}, "typ": "Bearer", "allowed-origins": []string{"https://app.example.com"},
		"realm_access":    map[string]any{"roles": realmRoles},
		"resource_access": map[string]any{"orders-api": map[string]any{"roles": clientRoles}, "account": map[string]any{"roles": []string{"manage-account", "manage-account-links", "view-profile"}}},
		"scope":           "openid email profile offline_access"}
	for k, v := range common {
		id[k], acc[k] = v, v
	}
	s := baseSession(now, sub, "jane.doe@example.com", groups)
	s.IDToken = jwt(r, hdr, id)
	s.AccessToken = jwt(r, hdr, acc)
	rt := map[string]any{"exp": iat + 1800, "iat": iat, "jti": guid(r), "iss": iss, "aud": iss, "sub": sub,
		"typ": "Offline", "azp": "authgate", "sid": sid, "scope": "openid email profile offline_access"}
	h, _ := json.Marshal(map[string]any{"alg": "HS512", "typ": "JWT", "kid": guid(r)})
	c, _ := json.Marshal(rt)
	s.RefreshToken = base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." +
		base64.RawURLEncoding.EncodeToString(randBytes(r, 64))
	s.IDPSessionID = sid
	return s
}

// oktaSession: Okta custom authorization server, 100 group names in both
// tokens, an opaque refresh token.
func oktaSession(now time.Time) *Session {
	r := newRNG(3)
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("App-%s-%s-%02d", []string{"Finance", "HR", "Engineering", "Sales", "Ops"}[i%5], []string{"Users", "Admins", "Approvers"}[i%3], i))
	}
	iat := now.Unix()
	uid := "00u" + opaque(r, 17)
	iss := "https://example.okta.com/oauth2/default"
	hdr := map[string]any{"kid": opaque(r, 43), "alg": "RS256"}
	s := baseSession(now, uid, "jane.doe@example.com", groups)
	s.IDToken = jwt(r, hdr, map[string]any{"sub": uid, "name": "Jane Doe", "email": "jane.doe@example.com", "ver": 1,
		"iss": iss, "aud": "0oa" + opaque(r, 17), "iat": iat, "exp": iat + 3600, "jti": "ID." + opaque(r, 43),
		"amr": []string{"pwd", "mfa", "otp"}, "idp": "00o" + opaque(r, 17), "nonce": opaque(r, 22),
		"preferred_username": "jane.doe@example.com", "auth_time": iat, "at_hash": opaque(r, 22), "groups": groups})
	s.AccessToken = jwt(r, hdr, map[string]any{"ver": 1, "jti": "AT." + opaque(r, 43), "iss": iss, "aud": "api://default",
		"iat": iat, "exp": iat + 3600, "cid": "0oa" + opaque(r, 17), "uid": uid,
		"scp": []string{"openid", "email", "profile", "offline_access"}, "auth_time": iat, "sub": "jane.doe@example.com", "groups": groups})
	s.RefreshToken = opaque(r, 43)
	return s
}

// cookieHeader returns the Cookie header a browser sends back after Save,
// and how many cookies it holds.
func cookieHeader(t testing.TB, w *httptest.ResponseRecorder) (string, int) {
	t.Helper()
	var parts []string
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 && c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; "), len(parts)
}

// v1CookieHeader is the Cookie header of the format before compression
// (version 1, plain), for comparison.
func v1CookieHeader(t testing.TB, s *CookieStore, sess *Session) (string, int) {
	t.Helper()
	v, err := s.sealer.seal(s.aad, Encode(sess))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := s.cookies.Write(w, httptest.NewRequest("GET", "/", nil), v, sess.ExpiresAt); err != nil {
		return strings.Repeat("x", len(v)), (len(v) + 4000) / 4000 // too large for the store at all
	}
	return cookieHeader(t, w)
}
