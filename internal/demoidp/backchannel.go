package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

const (
	// backchannelLogoutEvent is the member of the events claim that makes a
	// JWT a logout token (Back-Channel Logout 1.0, section 2.4).
	backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenType is the typ header that keeps a logout token from
	// being taken for another kind of JWT (section 2.4).
	logoutTokenType = "logout+jwt"
	// logoutTokenLifetime is exp minus iat: "a few minutes" is what the
	// specification suggests (section 2.4).
	logoutTokenLifetime = 2 * time.Minute
	// backchannelTimeout bounds one delivery, so that a client that does
	// not answer cannot hold up the sign-out for long.
	backchannelTimeout = 5 * time.Second
)

// endedSession is a login session that ended, with the clients that were
// issued tokens in it.
type endedSession struct {
	sid     string
	subject string
	clients []string
}

// newLogoutSigner signs logout tokens with the provider's signing key (the
// one its JWKS publishes), typ logout+jwt.
func newLogoutSigner(key *rsa.PrivateKey, keyID string) (jose.Signer, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: keyID, Algorithm: string(jose.RS256), Use: "sig"}},
		(&jose.SignerOptions{}).WithType(logoutTokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("create logout token signer: %w", err)
	}
	return signer, nil
}

// newBackchannelClient returns the client that delivers logout tokens. It
// does not follow redirects: the client's answer to the POST is the answer
// (section 2.8).
func newBackchannelClient() *http.Client {
	return &http.Client{
		Timeout:       backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkBackchannelURI checks a client's BackchannelLogoutURI: absolute,
// http or https, and no fragment (section 2.2).
func checkBackchannelURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("parse: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an http or https URL", raw)
	case u.Host == "":
		return fmt.Errorf("%q has no host", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a fragment", raw)
	}
	return nil
}

// EndSessions ends every login session of the user whose ID (the sub
// claim) is subject, as an administrator would: tokens issued in them stop
// working, the browsers must sign in again, and each client registered
// with a BackchannelLogoutURI that was issued tokens in one of them
// receives a logout token. It returns how many sessions ended, after every
// delivery has been answered or has timed out.
func (p *Provider) EndSessions(subject string) int {
	sids := p.store.sessionsOf(subject)
	p.store.endSessions(context.Background(), sids...)
	p.log.Info("demoidp: sessions ended", slog.String(attrUser, subject), slog.Int(attrSessions, len(sids)))
	return len(sids)
}

// RevokeRefreshTokens revokes every refresh token of the user whose ID is
// subject, as an administrator cutting off applications' offline access
// would: the login session stays and no client is told. A client learns of
// it when its next refresh is refused with invalid_grant. It returns how
// many tokens were revoked.
func (p *Provider) RevokeRefreshTokens(subject string) int {
	n := p.store.revokeRefreshTokens(subject)
	p.log.Info("demoidp: refresh tokens revoked", slog.String(attrUser, subject), slog.Int("tokens", n))
	return n
}

// backchannelLogout sends a logout token for each ended session to each of
// its clients that registered a BackchannelLogoutURI, all at once, and
// returns when every delivery is done. The deliveries outlive ctx's
// cancellation (a browser that leaves mid-sign-out), not its values.
func (p *Provider) backchannelLogout(ctx context.Context, ended []endedSession) {
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, e := range ended {
		for _, id := range e.clients {
			c, ok := p.store.clients[id]
			if !ok || c.BackchannelLogoutURI == "" {
				continue
			}
			wg.Go(func() { p.deliverLogout(ctx, c, e) })
		}
	}
	wg.Wait()
}

// deliverLogout POSTs one logout token (section 2.5). The OP does not try
// again: a client that missed it keeps its session until its tokens fail
// to refresh.
func (p *Provider) deliverLogout(ctx context.Context, c *client, e endedSession) {
	token, err := p.logoutToken(c.ID, e)
	if err != nil {
		p.log.ErrorContext(ctx, "demoidp: back-channel logout not sent", slog.String(attrClientID, c.ID), slog.String(attrError, err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		p.log.ErrorContext(ctx, "demoidp: back-channel logout not sent", slog.String(attrClientID, c.ID), slog.String(attrError, err.Error()))
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status := 0
	resp, err := p.backchannel.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		status = resp.StatusCode
	}
	switch {
	case err != nil:
		p.log.WarnContext(ctx, "demoidp: back-channel logout failed", slog.String(attrClientID, c.ID), slog.String(attrError, err.Error()))
	case status != http.StatusOK:
		// Section 2.8: 200 means the client ended the session.
		p.log.WarnContext(ctx, "demoidp: back-channel logout refused", slog.String(attrClientID, c.ID), slog.Int(attrStatus, status))
	default:
		p.log.InfoContext(ctx, "demoidp: back-channel logout sent", slog.String(attrClientID, c.ID))
	}
	if p.onLogout != nil {
		p.onLogout(c.ID, token, status)
	}
}

// logoutToken returns a signed logout token for one client and session
// (section 2.4): iss, aud, iat, exp, a random jti, sub, sid and the
// back-channel logout event; never a nonce.
func (p *Provider) logoutToken(clientID string, e endedSession) (string, error) {
	now := p.store.now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     p.issuer,
		Subject:    e.subject,
		Audience:   oidc.Audience{clientID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(logoutTokenLifetime)),
		JWTID:      rand.Text(),
		SessionID:  e.sid,
		Events:     map[string]any{backchannelLogoutEvent: struct{}{}},
	}
	token, err := crypto.Sign(claims, p.logoutSigner)
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return token, nil
}
