package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	scopeGroups = "groups"
	claimGroups = "groups"
	claimSID    = "sid"

	// authRequestLifetime bounds how long a sign-in may take and how long
	// its code is good for: "a maximum authorization code lifetime of 10
	// minutes is RECOMMENDED" (RFC 6749, section 4.1.2).
	authRequestLifetime = 10 * time.Minute
)

var errNotFound = errors.New("demoidp: not found")

type lifetimes struct{ access, id, refresh time.Duration }

// storage implements op.Storage in memory. Clients and users are fixed at
// construction; everything else is guarded by mu.
type storage struct {
	now       func() time.Time
	lifetimes lifetimes
	key       *rsa.PrivateKey
	keyID     string
	log       *slog.Logger

	clients     map[string]*client
	users       map[string]*User // by ID
	usersByName map[string]*User
	userList    []User // in the order given, for the login page

	mu            sync.Mutex
	authRequests  map[string]*authRequest
	codes         map[string]string // code → auth request ID
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken // by the token itself
	sessions      map[string]*loginSession // by cookie value
	// issuedTo lists, by login session id (sid), the clients that were
	// issued tokens in it: they get a back-channel logout when it ends.
	issuedTo map[string]map[string]struct{}

	// onEnd, when set, is told about the login sessions endSessions ended,
	// after mu is released (Provider.backchannelLogout).
	onEnd func(ctx context.Context, ended []endedSession)
}

// loginSession is the IdP's own sign-in (its cookie), which lets a second
// authorization request skip the login page. Its id is the sid claim; the
// cookie value is a separate secret, so a relying party that sees sid cannot
// take over the session.
type loginSession struct {
	id       string
	userID   string
	authTime time.Time
	expires  time.Time
}

type accessToken struct {
	id       string
	clientID string
	subject  string
	sid      string
	scopes   []string
	audience []string
	expires  time.Time
}

type refreshToken struct {
	clientID      string
	subject       string
	sid           string
	scopes        []string
	audience      []string
	amr           []string
	authTime      time.Time
	expires       time.Time
	accessTokenID string
}

func newStorage(clients []Client, users []User, l lifetimes, log *slog.Logger) (*storage, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	s := &storage{
		now:           time.Now,
		lifetimes:     l,
		key:           key,
		keyID:         rand.Text(),
		log:           log,
		clients:       make(map[string]*client),
		users:         make(map[string]*User),
		usersByName:   make(map[string]*User),
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]string),
		accessTokens:  make(map[string]*accessToken),
		refreshTokens: make(map[string]*refreshToken),
		sessions:      make(map[string]*loginSession),
		issuedTo:      make(map[string]map[string]struct{}),
	}
	var errs []error
	for i, c := range clients {
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("demoidp: client %d has no ID", i))
		case s.clients[c.ID] != nil:
			errs = append(errs, fmt.Errorf("demoidp: client %q registered twice", c.ID))
		case len(c.RedirectURIs) == 0:
			errs = append(errs, fmt.Errorf("demoidp: client %q has no redirect URI", c.ID))
		case c.BackchannelLogoutURI != "" && checkBackchannelURI(c.BackchannelLogoutURI) != nil:
			errs = append(errs, fmt.Errorf("demoidp: client %q BackchannelLogoutURI: %w", c.ID, checkBackchannelURI(c.BackchannelLogoutURI)))
		default:
			s.clients[c.ID] = &client{Client: c, idTokenLifetime: l.id}
		}
	}
	for i := range users {
		u := users[i]
		switch {
		case u.ID == "" || u.Username == "":
			errs = append(errs, fmt.Errorf("demoidp: user %d needs an ID and a username", i))
		case s.users[u.ID] != nil || s.usersByName[u.Username] != nil:
			errs = append(errs, fmt.Errorf("demoidp: user %q or ID %q registered twice", u.Username, u.ID))
		default:
			u.Groups = slices.Clone(u.Groups)
			s.users[u.ID] = &u
			s.usersByName[u.Username] = &u
			s.userList = append(s.userList, u)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPassword returns the user if username and password match.
func (s *storage) checkPassword(username, password string) (*User, bool) {
	u, ok := s.usersByName[username]
	if !ok {
		return nil, false
	}
	return u, subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
}

// session returns the live login session whose cookie value is cookie.
func (s *storage) session(cookie string) (loginSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[cookie]
	if !ok || !s.now().Before(sess.expires) {
		return loginSession{}, false
	}
	return *sess, true
}

// newSession starts a login session for userID and returns its cookie value.
func (s *storage) newSession(userID string) (string, loginSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sess := &loginSession{id: rand.Text(), userID: userID, authTime: now, expires: now.Add(s.lifetimes.refresh)}
	cookie := rand.Text() + rand.Text()
	s.sessions[cookie] = sess
	return cookie, *sess
}

// endSessions ends the login sessions with the given sids, revokes every
// token issued under them, and hands the sessions that were still live to
// onEnd (back-channel logout) once mu is released.
func (s *storage) endSessions(ctx context.Context, sids ...string) {
	var ended []endedSession
	s.mu.Lock()
	now := s.now()
	for _, sid := range sids {
		if sid == "" {
			continue
		}
		for cookie, v := range s.sessions {
			if v.id != sid {
				continue
			}
			if now.Before(v.expires) {
				ended = append(ended, endedSession{sid: sid, subject: v.userID, clients: slices.Sorted(maps.Keys(s.issuedTo[sid]))})
			}
			delete(s.sessions, cookie)
		}
		delete(s.issuedTo, sid)
		maps.DeleteFunc(s.refreshTokens, func(_ string, v *refreshToken) bool { return v.sid == sid })
		maps.DeleteFunc(s.accessTokens, func(_ string, v *accessToken) bool { return v.sid == sid })
	}
	onEnd := s.onEnd
	s.mu.Unlock()
	if len(ended) > 0 && onEnd != nil {
		onEnd(ctx, ended)
	}
}

// sessionsOf returns the sids of userID's live login sessions.
// revokeRefreshTokens deletes every refresh token issued to userID and
// returns how many there were.
func (s *storage) revokeRefreshTokens(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.refreshTokens)
	maps.DeleteFunc(s.refreshTokens, func(_ string, v *refreshToken) bool { return v.subject == userID })
	return n - len(s.refreshTokens)
}

func (s *storage) sessionsOf(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var sids []string
	for _, v := range s.sessions {
		if v.userID == userID && now.Before(v.expires) {
			sids = append(sids, v.id)
		}
	}
	return sids
}

// issued records that clientID was issued tokens in login session sid.
// The caller holds mu.
func (s *storage) issued(sid, clientID string) {
	if sid == "" {
		return
	}
	if s.issuedTo[sid] == nil {
		s.issuedTo[sid] = make(map[string]struct{})
	}
	s.issuedTo[sid][clientID] = struct{}{}
}

// completeAuthRequest marks the auth request as signed in by sess.
func (s *storage) completeAuthRequest(id string, sess loginSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok {
		return fmt.Errorf("complete auth request: %w", errNotFound)
	}
	ar.done, ar.userID, ar.sid, ar.authTime = true, sess.userID, sess.id, sess.authTime
	return nil
}

// sweep drops what has expired, so memory stays bounded in a long demo.
// The caller holds mu.
func (s *storage) sweep() {
	now := s.now()
	maps.DeleteFunc(s.authRequests, func(_ string, v *authRequest) bool { return !now.Before(v.created.Add(authRequestLifetime)) })
	maps.DeleteFunc(s.codes, func(_ string, id string) bool { return s.authRequests[id] == nil })
	maps.DeleteFunc(s.accessTokens, func(_ string, v *accessToken) bool { return !now.Before(v.expires) })
	maps.DeleteFunc(s.refreshTokens, func(_ string, v *refreshToken) bool { return !now.Before(v.expires) })
	maps.DeleteFunc(s.sessions, func(_ string, v *loginSession) bool { return !now.Before(v.expires) })
	live := make(map[string]bool, len(s.sessions))
	for _, v := range s.sessions {
		live[v.id] = true
	}
	maps.DeleteFunc(s.issuedTo, func(sid string, _ map[string]struct{}) bool { return !live[sid] })
}

// CreateAuthRequest implements op.Storage. It adds the PKCE rules the op
// package leaves to us: a public client must send a code_challenge, and the
// method must be S256 (RFC 9700, section 2.1.1).
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.clients[r.ClientID]
	if !ok {
		return nil, fmt.Errorf("create auth request: client: %w", errNotFound)
	}
	if r.CodeChallenge == "" && c.Secret == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("a public client must use PKCE with code_challenge_method S256")
	}
	if r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	ar := &authRequest{
		id:           rand.Text(),
		created:      s.now(),
		clientID:     r.ClientID,
		redirectURI:  r.RedirectURI,
		state:        r.State,
		nonce:        r.Nonce,
		loginHint:    r.LoginHint,
		scopes:       slices.Clone(r.Scopes),
		responseType: r.ResponseType,
		responseMode: r.ResponseMode,
		prompt:       slices.Clone(r.Prompt),
		maxAge:       r.MaxAge,
	}
	if r.CodeChallenge != "" {
		ar.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep()
	s.authRequests[ar.id] = ar
	cp := *ar
	return &cp, nil
}

// AuthRequestByID implements op.Storage. It returns a copy, so the op
// package never reads what the login page may be writing.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || !s.now().Before(ar.created.Add(authRequestLifetime)) {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	cp := *ar
	return &cp, nil
}

// AuthRequestByCode implements op.Storage. The code is spent only when
// tokens are issued for it (see spend), so a failed attempt, such as
// x/oauth2 trying client_secret_basic before client_secret_post, does not
// burn it.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return s.AuthRequestByID(ctx, id)
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authRequests[id] == nil {
		return fmt.Errorf("save code: %w", errNotFound)
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.Storage.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	maps.DeleteFunc(s.codes, func(_ string, v string) bool { return v == id })
	return nil
}

// spend marks an auth request's code as exchanged, so of two concurrent
// exchanges of one code only one gets tokens: a code "MUST NOT be used more
// than once" (RFC 6749, section 4.1.2). A refresh request passes. The caller
// holds mu.
func (s *storage) spend(r op.TokenRequest) error {
	ar, ok := r.(*authRequest)
	if !ok {
		return nil
	}
	stored, ok := s.authRequests[ar.id]
	if !ok || stored.exchanged {
		return oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	stored.exchanged = true
	return nil
}

// grantOf returns the client and login session a token request belongs to.
func grantOf(r any) (clientID, sid string, err error) {
	switch r := r.(type) {
	case *authRequest:
		return r.clientID, r.sid, nil
	case *refreshRequest:
		return r.clientID, r.sid, nil
	}
	return "", "", fmt.Errorf("demoidp: unsupported token request %T", r)
}

// newAccessToken records an access token; the caller holds mu.
func (s *storage) newAccessToken(r op.TokenRequest, clientID, sid string) *accessToken {
	at := &accessToken{
		id:       rand.Text(),
		clientID: clientID,
		subject:  r.GetSubject(),
		sid:      sid,
		scopes:   slices.Clone(r.GetScopes()),
		audience: slices.Clone(r.GetAudience()),
		expires:  s.now().Add(s.lifetimes.access),
	}
	s.accessTokens[at.id] = at
	s.issued(sid, clientID)
	return at
}

// CreateAccessToken implements op.Storage (a code flow without
// offline_access).
func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	clientID, sid, err := grantOf(r)
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.spend(r); err != nil {
		return "", time.Time{}, err
	}
	at := s.newAccessToken(r, clientID, sid)
	return at.id, at.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. On a refresh it
// rotates: the presented refresh token is deleted and a new one issued, so
// presenting the old one again answers invalid_grant (RFC 9700, section
// 4.14.2). The check and the delete happen under one lock, so of two
// concurrent refreshes with the same token only one succeeds.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	clientID, sid, err := grantOf(r)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var rt refreshToken
	if current == "" {
		ar, ok := r.(*authRequest)
		if !ok {
			return "", "", time.Time{}, fmt.Errorf("demoidp: refresh token for %T", r)
		}
		if err := s.spend(r); err != nil {
			return "", "", time.Time{}, err
		}
		rt = refreshToken{
			clientID: clientID,
			subject:  ar.userID,
			sid:      sid,
			scopes:   slices.Clone(ar.scopes),
			audience: ar.GetAudience(),
			amr:      ar.GetAMR(),
			authTime: ar.authTime,
			expires:  ar.authTime.Add(s.lifetimes.refresh),
		}
	} else {
		old, ok := s.refreshTokens[current]
		if !ok || !s.now().Before(old.expires) || old.clientID != clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired or already used")
		}
		delete(s.refreshTokens, current)
		// The new token's scope is the old token's, even when this request
		// narrowed the access token's (RFC 6749, section 6).
		rt = *old
	}
	at := s.newAccessToken(r, clientID, sid)
	rt.accessTokenID = at.id
	token := rand.Text() + rand.Text()
	s.refreshTokens[token] = &rt
	s.sweep()
	return at.id, token, at.expires, nil
}

// TokenRequestByRefreshToken implements op.Storage. An unknown, used or
// expired token is an error, which the op package answers as invalid_grant.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || !s.now().Before(rt.expires) {
		return nil, fmt.Errorf("refresh token: %w", errNotFound)
	}
	return &refreshRequest{
		clientID: rt.clientID,
		subject:  rt.subject,
		sid:      rt.sid,
		scopes:   slices.Clone(rt.scopes),
		audience: slices.Clone(rt.audience),
		amr:      slices.Clone(rt.amr),
		authTime: rt.authTime,
	}, nil
}

// TerminateSession implements op.Storage; TerminateSessionFromRequest is
// the one the op package calls, as storage implements it.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.refreshTokens, func(_ string, v *refreshToken) bool { return v.subject == userID && v.clientID == clientID })
	maps.DeleteFunc(s.accessTokens, func(_ string, v *accessToken) bool { return v.subject == userID && v.clientID == clientID })
	return nil
}

type sessionCookieKey struct{}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest
// for RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, section
// 2): it ends the browser's login session (its cookie, put in the context by
// Provider.endSession) and the one named by the id_token_hint's sid, with
// every token issued under them.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, r *op.EndSessionRequest) (string, error) {
	var sids []string
	if cookie, ok := ctx.Value(sessionCookieKey{}).(string); ok {
		if sess, ok := s.session(cookie); ok {
			sids = append(sids, sess.id)
		}
	}
	if r.IDTokenHintClaims != nil && r.IDTokenHintClaims.SessionID != "" {
		sids = append(sids, r.IDTokenHintClaims.SessionID)
	}
	s.endSessions(ctx, sids...)
	s.log.InfoContext(ctx, "demoidp: signed out", slog.String(attrClientID, r.ClientID), slog.Int(attrSessions, len(sids)))
	return r.RedirectURI, nil
}

// RevokeToken implements op.Storage (RFC 7009). Revoking a refresh token
// also revokes the access token issued with it (section 2.1); an unknown
// token is not an error (section 2.2).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		delete(s.accessTokens, rt.accessTokenID)
	}
	return nil
}

// GetRefreshTokenInfo implements op.Storage. A refresh token is its own ID.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, token, nil
}

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: s.keyID, key: s.key}, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage: the public half of the one signing key.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{id: s.keyID, key: &s.key.PublicKey}}, nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client: %w", errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("demoidp: wrong client id or secret")
	}
	return nil
}

// SetUserinfoFromScopes implements op.Storage; SetUserinfoFromRequest does
// the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's claims, with sid (OpenID Connect Front-Channel Logout 1.0,
// section 3) so a relying party can tie it to this login session.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	u, ok := s.users[r.GetSubject()]
	if !ok {
		return fmt.Errorf("user: %w", errNotFound)
	}
	setUserinfo(info, u, scopes)
	if _, sid, err := grantOf(r); err == nil && sid != "" {
		info.AppendClaims(claimSID, sid)
	}
	return nil
}

// SetUserinfoFromToken implements op.Storage for the userinfo endpoint. The
// op package has checked the JWT's signature and expiry; the record must
// also still exist (not revoked, not signed out).
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	u, ok := s.users[at.subject]
	if !ok {
		return fmt.Errorf("user: %w", errNotFound)
	}
	setUserinfo(info, u, at.scopes)
	return nil
}

// SetIntrospectionFromToken implements op.Storage (RFC 7662).
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if !slices.Contains(at.audience, clientID) {
		return errors.New("demoidp: token is not for this client")
	}
	u, ok := s.users[at.subject]
	if !ok {
		return fmt.Errorf("user: %w", errNotFound)
	}
	info := new(oidc.UserInfo)
	setUserinfo(info, u, at.scopes)
	resp.SetUserInfo(info)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.Expiration = oidc.FromTime(at.expires)
	return nil
}

func (s *storage) liveAccessToken(id string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[id]
	if !ok || !s.now().Before(at.expires) {
		return accessToken{}, fmt.Errorf("access token: %w", errNotFound)
	}
	return *at, nil
}

// GetPrivateClaimsFromScopes implements op.Storage; GetPrivateClaimsFromRequest
// does the work.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the access token (a JWT) carries the same identity claims as the ID
// token, plus scope, so the demo upstream can show them. The restricted
// scopes the op package passes have profile and email removed, so the
// request's own scopes are used.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, r op.TokenRequest, _ []string) (map[string]any, error) {
	u, ok := s.users[r.GetSubject()]
	if !ok {
		return nil, fmt.Errorf("user: %w", errNotFound)
	}
	info := new(oidc.UserInfo)
	setUserinfo(info, u, r.GetScopes())
	claims := map[string]any{"scope": strings.Join(r.GetScopes(), " ")}
	if info.Email != "" {
		claims["email"] = info.Email
		claims["email_verified"] = bool(info.EmailVerified)
	}
	if info.PreferredUsername != "" {
		claims["preferred_username"] = info.PreferredUsername
		claims["name"] = info.Name
	}
	if g, ok := info.Claims[claimGroups]; ok {
		claims[claimGroups] = g
	}
	if _, sid, err := grantOf(r); err == nil && sid != "" {
		claims[claimSID] = sid
	}
	return claims, nil
}

// GetKeyByIDAndClientID implements op.Storage; private_key_jwt client
// authentication is not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("demoidp: private_key_jwt is not supported")
}

// ValidateJWTProfileScopes implements op.Storage; the JWT bearer grant is
// not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("demoidp: the jwt-bearer grant is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// setUserinfo fills info with the claims of u that scopes allow (OpenID
// Connect Core 1.0, section 5.4); groups come with profile or groups.
func setUserinfo(info *oidc.UserInfo, u *User, scopes []string) {
	info.Subject = u.ID
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.EmailVerified)
			if !u.EmailVerified {
				// The struct field is omitempty; say false explicitly.
				info.AppendClaims("email_verified", false)
			}
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Name
		}
	}
	if len(u.Groups) > 0 && (slices.Contains(scopes, oidc.ScopeProfile) || slices.Contains(scopes, scopeGroups)) {
		info.AppendClaims(claimGroups, slices.Clone(u.Groups))
	}
}
