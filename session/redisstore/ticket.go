package redisstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/session"
)

// ticketV1 is the first byte of every ticket; unmarshalTicket rejects
// others, which ends those sessions (a fresh login) rather than misreading
// them. It differs from the first byte of session.Encode, so a sealed-cookie
// session left in a browser (same keys and cookie name, before a switch to
// Redis) is never read as a ticket, nor a ticket as a session.
const ticketV1 = 't'

// maxIDLen bounds a session ID, so a ticket stays one small cookie.
const maxIDLen = 256

// ticket is what the cookie holds: which session, the key that opens it,
// and when the cookie expires. The session itself lives only in Redis,
// sealed with key, so neither a Redis dump nor the cookie alone opens it.
type ticket struct {
	id  string
	key [session.KeySize]byte
	// expires is the session's ExpiresAt in Unix seconds, the cookie's
	// expiry. Save writes a new cookie when it changes.
	expires int64
}

// newTicket returns a ticket for id with a fresh random key.
func newTicket(id string, expires time.Time) (ticket, error) {
	t := ticket{id: id, expires: expires.Unix()}
	if _, err := rand.Read(t.key[:]); err != nil {
		return ticket{}, fmt.Errorf("read session key: %w", err)
	}
	return t, nil
}

// marshal returns version, key, expiry (8 bytes big-endian) and the ID.
func (t ticket) marshal() []byte {
	b := make([]byte, 0, 1+session.KeySize+8+len(t.id))
	b = append(b, ticketV1)
	b = append(b, t.key[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.expires))
	return append(b, t.id...)
}

// unmarshalTicket parses the output of marshal; ok is false for anything
// else.
func unmarshalTicket(b []byte) (t ticket, ok bool) {
	const head = 1 + session.KeySize + 8
	if len(b) <= head || len(b) > head+maxIDLen || b[0] != ticketV1 {
		return ticket{}, false
	}
	copy(t.key[:], b[1:1+session.KeySize])
	t.expires = int64(binary.BigEndian.Uint64(b[1+session.KeySize : head]))
	t.id = string(b[head:])
	if !validID(t.id) {
		return ticket{}, false
	}
	return t, true
}

// validID reports whether id can name a session: non-empty, bounded, and
// free of the braces that would break the Redis Cluster hash tag.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLen && !strings.ContainsAny(id, "{}")
}
