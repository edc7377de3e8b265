package idp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// assertionType is RFC 7523 section 2.2's client_assertion_type.
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionLifetime is how long a client assertion is valid. It is
	// signed for each request, so it need only outlive one round trip plus
	// the provider's clock skew.
	assertionLifetime = 60 * time.Second
	// minRSABits is the least RSA modulus accepted (RFC 7518 section 3.3
	// requires 2048).
	minRSABits = 2048
	// maxTokenRequestBody bounds a token request body rewritten by
	// assertionTransport; x/oauth2's are a few hundred bytes.
	maxTokenRequestBody = 64 << 10
)

// ClientKey is a private key that authenticates authgate at the token and
// revocation endpoints with private_key_jwt (RFC 7523, OpenID Connect Core
// section 9). Make one with ParseClientKey. The zero ClientKey is not usable.
type ClientKey struct {
	key  jose.JSONWebKey
	algs []jose.SignatureAlgorithm // usable algorithms, preferred first
}

// KeyID returns the "kid" sent with every assertion.
func (k *ClientKey) KeyID() string { return k.key.KeyID }

// Algorithms returns the JWS algorithms the key can sign with, preferred
// first; the one used is the first the provider advertises.
func (k *ClientKey) Algorithms() []string {
	out := make([]string, len(k.algs))
	for i, a := range k.algs {
		out[i] = string(a)
	}
	return out
}

// PublicJWK returns the public half as a JWK (JSON), to register at the
// provider.
func (k *ClientKey) PublicJWK() ([]byte, error) {
	pub := k.key.Public()
	pub.Use = "sig"
	return pub.MarshalJSON()
}

// ParseClientKey reads a PEM private key: PKCS #8 ("PRIVATE KEY"), PKCS #1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). RSA keys (at least 2048
// bits) sign with RS256 (or PS256, RS384, …, when the provider lists only
// those), EC keys on P-256, P-384 and P-521 with ES256, ES384 and ES512,
// Ed25519 keys with EdDSA. Encrypted keys are refused. An empty keyID
// becomes the key's RFC 7638 JWK thumbprint (SHA-256, base64url).
func ParseClientKey(pemBytes []byte, keyID string) (*ClientKey, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	for b, r := pem.Decode(rest); b != nil; b, r = pem.Decode(r) {
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, errors.New("more than one private key in the file")
		}
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("the key is encrypted; give an unencrypted PEM key (file permissions protect it)")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	var algs []jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want at least %d", bits, minRSABits)
		}
		algs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.RS384, jose.PS384, jose.RS512, jose.PS512}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			algs = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			algs = []jose.SignatureAlgorithm{jose.ES512}
		default:
			return nil, fmt.Errorf("EC curve %s not supported (want P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
		algs = []jose.SignatureAlgorithm{jose.EdDSA}
	default:
		return nil, fmt.Errorf("key type %T not supported (want RSA, EC or Ed25519)", key)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: keyID}
	if keyID == "" {
		pub := jwk.Public()
		sum, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("compute JWK thumbprint: %w", err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(sum)
	}
	return &ClientKey{key: jwk, algs: algs}, nil
}

// assertionSigner signs client assertions for one discovered provider.
type assertionSigner struct {
	signer   jose.Signer
	alg      jose.SignatureAlgorithm
	clientID string
	audience string // the token endpoint URL (OpenID Connect Core 9)
	now      func() time.Time

	// keyFunc, when set, returns the client key in use (a rotated key
	// file); the signer is rebuilt when it changes.
	keyFunc    func() *ClientKey
	advertised []string
	mu         sync.Mutex
	key        *ClientKey // the key signer signs with
}

// current returns the signer for the key in use.
func (s *assertionSigner) current() (jose.Signer, error) {
	if s.keyFunc == nil {
		return s.signer, nil
	}
	k := s.keyFunc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if k == nil || k == s.key {
		return s.signer, nil
	}
	next, err := newAssertionSigner(k, s.advertised, s.clientID, s.audience, s.now)
	if err != nil {
		return nil, err
	}
	s.signer, s.alg, s.key = next.signer, next.alg, k
	return s.signer, nil
}

// newAssertionSigner picks the first of the key's algorithms that the
// provider lists in token_endpoint_auth_signing_alg_values_supported (any,
// when it lists none) and prepares a signer.
func newAssertionSigner(k *ClientKey, advertised []string, clientID, tokenURL string, now func() time.Time) (*assertionSigner, error) {
	alg := k.algs[0]
	if len(advertised) > 0 {
		i := slices.IndexFunc(k.algs, func(a jose.SignatureAlgorithm) bool { return slices.Contains(advertised, string(a)) })
		if i < 0 {
			return nil, fmt.Errorf("%w: the client key signs with %v, but the provider accepts only %v for private_key_jwt (token_endpoint_auth_signing_alg_values_supported)",
				errMisconfigured, k.Algorithms(), advertised)
		}
		alg = k.algs[i]
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("prepare client assertion signer: %w", err)
	}
	return &assertionSigner{signer: signer, alg: alg, clientID: clientID, audience: tokenURL, now: now, advertised: advertised, key: k}, nil
}

// sign returns a fresh client assertion (RFC 7523 section 3): iss and sub
// the client ID, aud the token endpoint, a random jti, iat and a short exp.
func (s *assertionSigner) sign() (string, error) {
	jti, err := randomString()
	if err != nil {
		return "", err
	}
	signer, err := s.current()
	if err != nil {
		return "", err
	}
	now := s.now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   s.clientID,
		Subject:  s.clientID,
		Audience: jwt.Audience{s.audience},
		ID:       jti,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return raw, nil
}

// addTo sets the client assertion parameters on a token or revocation
// request form.
func (s *assertionSigner) addTo(form url.Values) error {
	a, err := s.sign()
	if err != nil {
		return err
	}
	form.Del("client_secret")
	form.Set("client_id", s.clientID)
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", a)
	return nil
}

// assertionTransport adds a fresh client assertion to every POST to the
// token endpoint. x/oauth2 has no hook for private_key_jwt: it can send the
// extra parameters with an authorization code (AuthCodeOption), but not
// with a refresh, so the form is completed here for both.
type assertionTransport struct {
	base     http.RoundTripper
	tokenURL string
	signer   *assertionSigner
}

func (t assertionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.String() != t.tokenURL || req.Body == nil {
		return t.base.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequestBody+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read token request: %w", err)
	}
	if len(body) > maxTokenRequestBody {
		return nil, errors.New("token request body too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("parse token request: %w", err)
	}
	if err := t.signer.addTo(form); err != nil {
		return nil, err
	}
	enc := form.Encode()
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(strings.NewReader(enc))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(enc))), nil }
	r.ContentLength = int64(len(enc))
	r.Header.Set("Content-Length", strconv.Itoa(len(enc)))
	r.Header.Del("Authorization") // never both a secret and an assertion
	return t.base.RoundTrip(r)
}
