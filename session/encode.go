package session

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"
)

// encodingV1 is the first byte of every encoded session. A new layout gets a
// new number; Decode rejects numbers it does not know, which ends those
// sessions (a fresh login) rather than misreading them.
const encodingV1 = 1

// Flag bits in the second byte of an encoded session.
const (
	flagEmailVerifiedKnown = 1 << iota // EmailVerified != nil
	flagEmailVerified                  // *EmailVerified
	flagExpiry                         // Expiry is not zero
	flagIssuedAt                       // IssuedAt is not zero
	flagExpiresAt                      // ExpiresAt is not zero
	flagTokenIssuedAt                  // TokenIssuedAt is not zero (added later; older encodings lack it)
	flagClaims                         // Claims is not empty (added later; older encodings lack it)
	flagUser                           // User is not empty (added later; older encodings lack it)
	flagsKnown             = flagUser<<1 - 1
)

// errDecode is returned by Decode for every malformed input. It wraps
// ErrNotFound: an undecodable session is a client fault.
var errDecode = fmt.Errorf("%w: malformed session encoding", ErrNotFound)

// Encode returns a compact binary encoding of every field of s:
//
//	version byte (1), flags byte,
//	ID, Subject, Email, PreferredUsername, Name, IDPSessionID,
//	AccessToken, RefreshToken, IDToken  (each uvarint length + bytes),
//	len(Groups) uvarint, each group (uvarint length + bytes),
//	Expiry, IssuedAt, ExpiresAt, TokenIssuedAt when set (varint unix seconds + uvarint nanoseconds),
//	Claims when set (uvarint length + bytes),
//	User when set (uvarint length + bytes).
//
// Fields added later come last, each behind its own flag, so that an older
// encoding (without the flag) still decodes.
//
// Times keep nanosecond precision but not their location or monotonic
// reading; Decode returns them in UTC. A nil s encodes as an empty session.
func Encode(s *Session) []byte {
	if s == nil {
		s = &Session{}
	}
	strs := [...]string{s.ID, s.Subject, s.Email, s.PreferredUsername, s.Name,
		s.IDPSessionID, s.AccessToken, s.RefreshToken, s.IDToken}
	times := [...]*time.Time{&s.Expiry, &s.IssuedAt, &s.ExpiresAt, &s.TokenIssuedAt}

	var flags byte
	if s.EmailVerified != nil {
		flags |= flagEmailVerifiedKnown
		if *s.EmailVerified {
			flags |= flagEmailVerified
		}
	}
	size := 2 + binary.MaxVarintLen64
	for _, v := range strs {
		size += binary.MaxVarintLen64 + len(v)
	}
	for _, g := range s.Groups {
		size += binary.MaxVarintLen64 + len(g)
	}
	for i, t := range times {
		if !t.IsZero() {
			flags |= flagExpiry << i
			size += 2 * binary.MaxVarintLen64
		}
	}
	if s.Claims != "" {
		flags |= flagClaims
		size += binary.MaxVarintLen64 + len(s.Claims)
	}
	if s.User != "" {
		flags |= flagUser
		size += binary.MaxVarintLen64 + len(s.User)
	}

	b := make([]byte, 0, size)
	b = append(b, encodingV1, flags)
	for _, v := range strs {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Groups)))
	for _, g := range s.Groups {
		b = binary.AppendUvarint(b, uint64(len(g)))
		b = append(b, g...)
	}
	for _, t := range times {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.Unix())
			b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
		}
	}
	if s.Claims != "" {
		b = binary.AppendUvarint(b, uint64(len(s.Claims)))
		b = append(b, s.Claims...)
	}
	if s.User != "" {
		b = binary.AppendUvarint(b, uint64(len(s.User)))
		b = append(b, s.User...)
	}
	return b
}

// Decode parses the output of Encode. Any malformed input (unknown version,
// truncation, trailing bytes, impossible lengths) returns an error wrapping
// ErrNotFound; Decode never panics.
//
// All strings of the returned Session share one allocation, the copy of b.
func Decode(b []byte) (*Session, error) {
	if len(b) < 2 {
		return nil, errDecode
	}
	return decode(b[0], b[1], string(b[2:]))
}

// decodeOwned is Decode for a buffer nobody else holds or will modify (the
// plaintext Sealer.open returns): the strings point into b instead of a
// copy of it, saving an allocation and a copy on every request.
func decodeOwned(b []byte) (*Session, error) {
	if len(b) < 2 {
		return nil, errDecode
	}
	body := b[2:]
	return decode(b[0], b[1], unsafe.String(unsafe.SliceData(body), len(body)))
}

// sessionAlloc puts a Session and the bool EmailVerified points at in one
// allocation.
type sessionAlloc struct {
	s             Session
	emailVerified bool
}

// decode parses the body of an encoded session given its two header bytes.
func decode(version, flags byte, body string) (*Session, error) {
	if version != encodingV1 {
		return nil, errDecode
	}
	if flags&^flagsKnown != 0 ||
		(flags&flagEmailVerified != 0 && flags&flagEmailVerifiedKnown == 0) {
		return nil, errDecode
	}
	d := decoder{s: body}
	alloc := &sessionAlloc{}
	s := &alloc.s
	for _, p := range [...]*string{&s.ID, &s.Subject, &s.Email, &s.PreferredUsername, &s.Name,
		&s.IDPSessionID, &s.AccessToken, &s.RefreshToken, &s.IDToken} {
		*p = d.string()
	}
	n := d.uvarint()
	// Every group takes at least one byte (its length), which bounds the
	// allocation a hostile input can ask for.
	if n > uint64(len(d.s)) {
		return nil, errDecode
	}
	if n > 0 {
		s.Groups = make([]string, n)
		for i := range s.Groups {
			s.Groups[i] = d.string()
		}
	}
	for i, t := range [...]*time.Time{&s.Expiry, &s.IssuedAt, &s.ExpiresAt, &s.TokenIssuedAt} {
		if flags&(flagExpiry<<i) != 0 {
			*t = d.time()
		}
	}
	if flags&flagClaims != 0 {
		s.Claims = d.string()
		if s.Claims == "" {
			d.bad = true // Encode never flags empty claims; it would not round-trip
		}
	}
	if flags&flagUser != 0 {
		s.User = d.string()
		if s.User == "" {
			d.bad = true // Encode never flags an empty User; it would not round-trip
		}
	}
	if d.bad || len(d.s) != 0 {
		return nil, errDecode
	}
	if flags&flagEmailVerifiedKnown != 0 {
		alloc.emailVerified = flags&flagEmailVerified != 0
		s.EmailVerified = &alloc.emailVerified
	}
	return s, nil
}

// decoder consumes s from the front. After the first error it sets bad and
// returns zero values, so callers check once at the end.
type decoder struct {
	s   string
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(d.s) {
			break
		}
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflows 64 bits
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return x
		}
	}
	d.bad = true
	d.s = ""
	return 0
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.bad = true
		d.s = ""
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

func (d *decoder) time() time.Time {
	u := d.uvarint()
	sec := int64(u>>1) ^ -int64(u&1) // zigzag, as binary.AppendVarint
	nsec := d.uvarint()
	if d.bad || nsec >= uint64(time.Second) {
		d.bad = true
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		// Encode never writes a zero time; a flagged one would not
		// round-trip.
		d.bad = true
	}
	return t
}
