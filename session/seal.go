package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
)

// KeySize is the length in bytes of every sealing key (AES-256).
const KeySize = 32

const (
	// sealVersion sits in the top two bits of the first byte of a sealed
	// value, so the format can change without guessing.
	sealVersion = 1
	// sealVersionDeflate marks a value whose plaintext is compressed (see
	// compress.go). Version 1 values still open.
	sealVersionDeflate = 2
	// hintBits low bits of the first byte carry a hint of the key that
	// sealed the value, so Open tries only keys with that hint (usually
	// one) instead of every key in the rotation list.
	hintBits  = 6
	hintMask  = 1<<hintBits - 1
	nonceSize = 12 // 96-bit GCM nonce, NIST SP 800-38D §8.2.2 (random construction)
	tagSize   = 16
	// sealOverhead is what Seal adds to the plaintext before base64.
	sealOverhead = 1 + nonceSize + tagSize
)

// b64 is unpadded base64url (RFC 4648 §5) that rejects non-zero trailing
// bits, so each sealed value has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// Errors returned by Open. Each wraps ErrNotFound, so callers treat all of
// them as "no session"; they are preallocated so a bad cookie costs no
// allocation.
var (
	errMalformed  = fmt.Errorf("%w: malformed sealed value", ErrNotFound)
	errUnknownKey = fmt.Errorf("%w: sealed with an unknown key", ErrNotFound)
	errOpen       = fmt.Errorf("%w: authentication failed", ErrNotFound)
)

// errKeySize is returned by NewSealer for a key that is not KeySize bytes.
var errKeySize = errors.New("session: key must be 32 bytes")

// Sealer encrypts and authenticates values with AES-256-GCM under a list of
// keys. The first key seals; every key opens, so a key can be rotated in
// (put the new key first) and later removed once cookies sealed with the old
// one have expired. The zero value has no keys: use NewSealer. A Sealer is
// safe for concurrent use.
//
// SetKeys swaps the whole key set atomically while the Sealer is in use,
// so keys rotate without a restart: a value sealed before the swap opens
// after it as long as its key is still in the list.
type Sealer struct {
	set atomic.Pointer[keySet]
}

// keySet is one immutable list of keys.
type keySet struct {
	keys []sealKey
}

type sealKey struct {
	aead cipher.AEAD
	hint byte
}

// NewSealer returns a Sealer for keys, each exactly KeySize bytes long. The
// first key seals; all keys open. It returns an error for an empty list or
// a key of the wrong size.
func NewSealer(keys [][]byte) (*Sealer, error) {
	ks, err := newKeySet(keys)
	if err != nil {
		return nil, err
	}
	s := &Sealer{}
	s.set.Store(ks)
	return s, nil
}

// SetKeys replaces the keys, with the same rules as NewSealer: the first
// seals, all open. Values sealed with a key no longer in the list stop
// opening (their sessions become fresh logins). On error the keys in use
// are kept.
func (s *Sealer) SetKeys(keys [][]byte) error {
	ks, err := newKeySet(keys)
	if err != nil {
		return err
	}
	s.set.Store(ks)
	return nil
}

// current returns the key set in use, or nil for a nil or zero Sealer.
func (s *Sealer) current() *keySet {
	if s == nil {
		return nil
	}
	return s.set.Load()
}

func newKeySet(keys [][]byte) (*keySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: no sealing keys")
	}
	ks := &keySet{keys: make([]sealKey, 0, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("check key %d: %w (got %d)", i, errKeySize, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("create cipher for key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("create gcm for key %d: %w", i, err)
		}
		ks.keys = append(ks.keys, sealKey{aead: aead, hint: keyHint(k)})
	}
	return ks, nil
}

// keyHint derives a 6-bit identifier of a key. It is a hash, not the key's
// position, so it stays the same when keys are reordered during rotation;
// two keys may share a hint, in which case Open tries both.
func keyHint(k []byte) byte {
	h := sha256.Sum256(append([]byte("authgate session key hint\x00"), k...))
	return h[0] & hintMask
}

// Seal encrypts plaintext for the cookie called name and returns
// base64url (raw, unpadded) of: one byte (format version and key hint),
// a random 96-bit nonce, and the ciphertext with its 128-bit tag. name is
// the AEAD additional data, so a value sealed for one cookie cannot be
// replayed as another.
func (s *Sealer) Seal(name string, plaintext []byte) (string, error) {
	return s.seal([]byte(name), plaintext)
}

func (s *Sealer) seal(aad, plaintext []byte) (string, error) {
	return s.current().seal(aad, plaintext)
}

// sealCompressed seals plaintext compressed (format version 2) when that is
// shorter, and as seal does otherwise.
func (s *Sealer) sealCompressed(aad, plaintext []byte) (string, error) {
	return s.current().sealCompressed(aad, plaintext)
}

func (ks *keySet) seal(aad, plaintext []byte) (string, error) {
	return ks.sealAs(sealVersion, aad, plaintext)
}

func (ks *keySet) sealCompressed(aad, plaintext []byte) (string, error) {
	if c := compress(plaintext); len(c) < len(plaintext) {
		return ks.sealAs(sealVersionDeflate, deflateAAD(aad), c)
	}
	return ks.seal(aad, plaintext)
}

// deflateAAD binds the format to the ciphertext: the first byte is not
// authenticated by itself, so without this a version-1 value relabelled 2
// (or the reverse) would be decrypted and only then fail to parse.
func deflateAAD(aad []byte) []byte {
	return append(aad[:len(aad):len(aad)], "\x00deflate"...)
}

func (ks *keySet) sealAs(version byte, aad, plaintext []byte) (string, error) {
	if ks == nil || len(ks.keys) == 0 {
		return "", errors.New("session: sealer has no keys")
	}
	k := ks.keys[0]
	// One buffer holds the raw sealed value and, after it, its encoding.
	rawLen := sealOverhead + len(plaintext)
	buf := make([]byte, 1+nonceSize, rawLen+b64.EncodedLen(rawLen))
	buf[0] = version<<hintBits | k.hint
	// Random nonces are safe for up to 2^32 seals per key (NIST SP
	// 800-38D §8.3); rotate keys well before that.
	if _, err := rand.Read(buf[1 : 1+nonceSize]); err != nil {
		return "", fmt.Errorf("read nonce: %w", err)
	}
	raw := k.aead.Seal(buf, buf[1:1+nonceSize], plaintext, aad)
	return string(b64.AppendEncode(raw[rawLen:], raw)), nil
}

// Open reverses Seal for the cookie called name, and opens compressed
// values (format version 2) too. Every failure (bad base64, truncated,
// tampered, unknown key, wrong name, bad compression) returns an error
// wrapping ErrNotFound.
func (s *Sealer) Open(name, value string) ([]byte, error) {
	return s.open([]byte(name), value)
}

// open decodes and decrypts in place: the returned plaintext shares the
// one buffer it allocates.
func (s *Sealer) open(aad []byte, value string) ([]byte, error) {
	return s.current().open(aad, value)
}

func (ks *keySet) open(aad []byte, value string) ([]byte, error) {
	if ks == nil || len(value) < b64.EncodedLen(sealOverhead) {
		return nil, errMalformed
	}
	buf := make([]byte, b64.DecodedLen(len(value)))
	n, err := b64.Decode(buf, []byte(value))
	if err != nil || n < sealOverhead {
		return nil, errMalformed
	}
	buf = buf[:n]
	version := buf[0] >> hintBits
	switch version {
	case sealVersion:
	case sealVersionDeflate:
		aad = deflateAAD(aad)
	default:
		return nil, errMalformed
	}
	hint := buf[0] & hintMask
	nonce, ct := buf[1:1+nonceSize], buf[1+nonceSize:]
	candidates := 0
	for _, k := range ks.keys {
		if k.hint == hint {
			candidates++
		}
	}
	if candidates == 0 {
		return nil, errUnknownKey
	}
	for _, k := range ks.keys {
		if k.hint != hint {
			continue
		}
		candidates--
		// GCM decrypts before it checks the tag and wipes the output on
		// failure, so only the last candidate may open in place; the
		// rare earlier ones (keys whose hints collide) get their own
		// buffer.
		dst := ct[:0]
		if candidates > 0 {
			dst = make([]byte, 0, len(ct))
		}
		if pt, err := k.aead.Open(dst, nonce, ct, aad); err == nil {
			if version == sealVersionDeflate {
				return decompress(pt)
			}
			return pt, nil
		}
	}
	return nil, errOpen
}
