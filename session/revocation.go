package session

import (
	"strings"
	"sync"
	"time"
)

// purgeInterval is how often Add sweeps out entries past their Until. The
// sweep is O(entries); Revoked ignores expired entries anyway, so the
// interval only bounds memory, not correctness.
const purgeInterval = time.Minute

// Revocation ends sessions before their cookies expire: on sign-out, or
// when the OpenID Provider sends a back-channel logout token (OpenID
// Connect Back-Channel Logout 1.0 §2.4: "sid" names an IdP session, "sub"
// a user). Each non-empty identifier matches on its own:
//
//   - SessionID: the session with that ID;
//   - IDPSessionID: every session with that IdP session ("sid");
//   - Subject: every session of that user issued at or before IssuedBefore.
//
// For the SessionID and IDPSessionID forms, a non-zero IssuedBefore also
// limits them to sessions issued at or before it; zero means any time. For
// the Subject form zero matches only sessions with a zero IssuedAt, so
// callers pass the time of the logout. The zero value revokes nothing.
type Revocation struct {
	SessionID    string
	IDPSessionID string
	Subject      string
	IssuedBefore time.Time
	// Until is when the entry may be forgotten: no session it matches can
	// outlive it, so it is the logout time plus the longest session
	// lifetime. An entry whose Until is not after now is dropped.
	Until time.Time
}

// revEntry is what the list keeps per identifier.
type revEntry struct {
	issuedBefore time.Time // zero: any time (SessionID/IDPSessionID forms only)
	until        time.Time
}

// RevocationList is an in-memory set of Revocations, consulted on every
// request. It lives in one process: replicas need a shared store to see
// each other's revocations. The zero value is not usable: use
// NewRevocationList. A RevocationList is safe for concurrent use.
//
// Memory is one map entry per identifier added, kept until its Until; the
// identifiers come from sign-outs and from logout tokens signed by the
// IdP, not from anonymous clients.
type RevocationList struct {
	now func() time.Time

	mu        sync.RWMutex
	byID      map[string]revEntry
	byIDP     map[string]revEntry
	bySubject map[string]revEntry
	nextPurge time.Time
}

// NewRevocationList returns an empty list. now returns the current time;
// nil means time.Now.
func NewRevocationList(now func() time.Time) *RevocationList {
	if now == nil {
		now = time.Now
	}
	return &RevocationList{
		now:       now,
		byID:      make(map[string]revEntry),
		byIDP:     make(map[string]revEntry),
		bySubject: make(map[string]revEntry),
	}
}

// Add records rev. A Revocation with no identifier, or whose Until is not
// after now, is ignored. Adding to an identifier already present keeps
// the union: the later Until and the broader IssuedBefore.
func (l *RevocationList) Add(rev Revocation) {
	now := l.now()
	if !rev.Until.After(now) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextPurge) {
		l.purgeLocked(now)
		l.nextPurge = now.Add(purgeInterval)
	}
	e := revEntry{issuedBefore: rev.IssuedBefore, until: rev.Until}
	if rev.SessionID != "" {
		merge(l.byID, rev.SessionID, e, true)
	}
	if rev.IDPSessionID != "" {
		merge(l.byIDP, rev.IDPSessionID, e, true)
	}
	if rev.Subject != "" {
		merge(l.bySubject, rev.Subject, e, false)
	}
}

// merge stores e under key, keeping the union with an existing entry.
// With zeroIsAny, a zero issuedBefore means any time and wins. A new key is
// copied: a Session's strings point into the whole decoded cookie (decode
// does not copy them), so keeping one for the revocation's lifetime would
// keep about 2 KB per sign-out alive (the soak's slow heap growth, issue 12).
func merge(m map[string]revEntry, key string, e revEntry, zeroIsAny bool) {
	old, ok := m[key]
	if !ok {
		key = strings.Clone(key)
	}
	if ok {
		if old.until.After(e.until) {
			e.until = old.until
		}
		switch {
		case zeroIsAny && (old.issuedBefore.IsZero() || e.issuedBefore.IsZero()):
			e.issuedBefore = time.Time{}
		case old.issuedBefore.After(e.issuedBefore):
			e.issuedBefore = old.issuedBefore
		}
	}
	m[key] = e
}

func (l *RevocationList) purgeLocked(now time.Time) {
	for _, m := range [...]map[string]revEntry{l.byID, l.byIDP, l.bySubject} {
		for k, e := range m {
			if !e.until.After(now) {
				delete(m, k)
			}
		}
	}
}

// Revoked reports whether s matches a Revocation still in force. It takes
// a read lock and does at most three map lookups; it does not allocate.
func (l *RevocationList) Revoked(s *Session) bool {
	if s == nil {
		return false
	}
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if s.ID != "" {
		if e, ok := l.byID[s.ID]; ok && e.until.After(now) &&
			(e.issuedBefore.IsZero() || !s.IssuedAt.After(e.issuedBefore)) {
			return true
		}
	}
	if s.IDPSessionID != "" {
		if e, ok := l.byIDP[s.IDPSessionID]; ok && e.until.After(now) &&
			(e.issuedBefore.IsZero() || !s.IssuedAt.After(e.issuedBefore)) {
			return true
		}
	}
	if s.Subject != "" {
		if e, ok := l.bySubject[s.Subject]; ok && e.until.After(now) &&
			!s.IssuedAt.After(e.issuedBefore) {
			return true
		}
	}
	return false
}

// Len returns the number of entries in force (one per identifier), for
// metrics. It purges expired entries first.
func (l *RevocationList) Len() int {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.purgeLocked(now)
	return len(l.byID) + len(l.byIDP) + len(l.bySubject)
}
