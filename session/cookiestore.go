package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// errExpired is returned by Load for a session past its ExpiresAt.
var errExpired = fmt.Errorf("%w: session expired", ErrNotFound)

// CookieStoreOptions configures a CookieStore. The zero value is rejected
// by NewCookieStore: Keys is required; every other field has a default.
type CookieStoreOptions struct {
	// Cookie names the cookie and its attributes. Its Now is replaced by
	// the store's.
	Cookie CookieOptions
	// Keys seal and open the cookie; see NewSealer. Required unless Sealer
	// is set.
	Keys [][]byte
	// Sealer, when set, seals and opens the cookie instead of a Sealer
	// built from Keys; share one whose keys rotate (Sealer.SetKeys).
	Sealer *Sealer
	// Now returns the current time, for expiry; nil means time.Now.
	Now func() time.Time
	// ObserveSize, when set, is called by every Save that seals a session
	// with the sealed value's length in bytes (all chunks together, what
	// the browser sends back in its Cookie header), also when it turns out
	// too large to write. Nil observes nothing.
	ObserveSize func(bytes int)
}

// CookieStore keeps the whole session in an AES-256-GCM sealed cookie,
// split into chunks when large. It needs no server-side state, so it suits
// a single replica or replicas that share Keys; a session cannot be ended
// server-side except through a RevocationList. The zero value is not
// usable: use NewCookieStore. A CookieStore is safe for concurrent use.
type CookieStore struct {
	cookies *Cookies
	sealer  *Sealer
	aad     []byte // the effective cookie name, the AEAD additional data
	now     func() time.Time
	cache   *openCache // nil: no cache
	observe func(int)  // nil: none
	// lastSealed is the most recent session sealed, by its encoding: see
	// Save.
	lastSealed atomic.Pointer[sealedSession]
}

// sealedSession remembers one sealed session: the key set that sealed it,
// the SHA-256 of its encoding and the sealed value.
type sealedSession struct {
	keys  *keySet
	sum   [sha256.Size]byte
	value string
}

var _ Store = (*CookieStore)(nil)

// NewCookieStore returns a CookieStore for o, or an error when the cookie
// options or keys are invalid.
func NewCookieStore(o CookieStoreOptions) (*CookieStore, error) {
	if err := o.Cookie.Validate(); err != nil {
		return nil, fmt.Errorf("check cookie options: %w", err)
	}
	sealer := o.Sealer
	if sealer == nil {
		var err error
		if sealer, err = NewSealer(o.Keys); err != nil {
			return nil, fmt.Errorf("create sealer: %w", err)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Cookie.Now = o.Now
	c := NewCookies(o.Cookie)
	return &CookieStore{
		cookies: c,
		sealer:  sealer,
		aad:     []byte(c.Name()),
		now:     o.Now,
		cache:   newOpenCache(),
		observe: o.ObserveSize,
	}, nil
}

// Cookies returns the store's cookie, so the proxy can strip it (and its
// chunks) from requests sent upstream.
func (s *CookieStore) Cookies() *Cookies { return s.cookies }

// Load returns the session sealed in r's cookie. Every failure (no cookie,
// a missing chunk, tampered or truncated value, a retired key, an
// undecodable or expired session) returns an error wrapping ErrNotFound;
// Load returns no other error. Each call returns a new Session the caller
// owns and may modify.
//
// Sessions opened recently are cached by exact cookie value (see
// openCache): a hit skips base64, AES-GCM and decoding, about 5x faster
// than opening, and still checks expiry.
func (s *CookieStore) Load(r *http.Request) (*Session, error) {
	v, ok := s.cookies.Read(r)
	if !ok {
		return nil, ErrNotFound
	}
	// The key set is read once: a session cached under an older set (one
	// whose key may have been retired since) is opened again.
	ks := s.sealer.current()
	if s.cache != nil {
		if sess, ok := s.cache.get(v, ks); ok {
			if !sess.ExpiresAt.After(s.now()) {
				s.cache.remove(v)
				return nil, errExpired
			}
			return sess.clone(), nil
		}
	}
	pt, err := ks.open(s.aad, v)
	if err != nil {
		return nil, err
	}
	sess, err := decodeOwned(pt)
	if err != nil {
		return nil, err
	}
	if !sess.ExpiresAt.After(s.now()) {
		return nil, errExpired
	}
	if s.cache != nil {
		s.cache.put(v, ks, sess, cap(pt))
		return sess.clone(), nil
	}
	return sess, nil
}

// Save seals sess into the cookie, which expires at sess.ExpiresAt (a
// session already expired clears the cookie instead). It returns an error
// for a session without ExpiresAt, and a *TooLargeError (wrapping
// ErrCookieTooLarge) when the sealed session, compressed, still needs more
// than MaxChunks cookies.
func (s *CookieStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	if sess == nil {
		return errors.New("session: save nil session")
	}
	if sess.ExpiresAt.IsZero() {
		// Load treats a zero ExpiresAt as expired; saving one is a bug.
		return errors.New("session: save session without ExpiresAt")
	}
	// Compressed (format version 2): an enterprise session whose tokens
	// carry hundreds of groups shrinks several-fold, enough to stay under
	// the 8 KB request-header limits of common ingresses.
	//
	// After a refresh, every request that still carries the old cookie
	// within the grace window gets the same refreshed session to save (a
	// page's requests in flight, or a client that ignores Set-Cookie):
	// sealing it again would compress and encrypt the same bytes each
	// time, so the last value sealed is reused when the encoding and key
	// set are unchanged. Same plaintext, same key: giving two responses the
	// same ciphertext reveals nothing.
	pt := Encode(sess)
	sum := sha256.Sum256(pt)
	ks := s.sealer.current()
	var v string
	if last := s.lastSealed.Load(); last != nil && last.keys == ks && last.sum == sum {
		v = last.value
	} else {
		var err error
		if v, err = ks.sealCompressed(s.aad, pt); err != nil {
			return fmt.Errorf("seal session: %w", err)
		}
		s.lastSealed.Store(&sealedSession{keys: ks, sum: sum, value: v})
	}
	if s.observe != nil {
		s.observe(len(v))
	}
	if err := s.cookies.Write(w, r, v, sess.ExpiresAt); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// Delete clears the cookie and all its chunks. sess may be nil. A copy of
// the cookie kept elsewhere still opens until it expires: record a
// Revocation to refuse it.
func (s *CookieStore) Delete(w http.ResponseWriter, r *http.Request, sess *Session) error {
	if v, ok := s.cookies.Read(r); ok && s.cache != nil {
		s.cache.remove(v)
	}
	s.cookies.Clear(w, r)
	return nil
}
