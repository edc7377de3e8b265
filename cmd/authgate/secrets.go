package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/authgate/authgate/internal/secretfile"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
)

// watchSecret watches a …_FILE secret and returns its current value, or
// nil when file is empty (the secret, if any, came from the environment
// and never changes).
func watchSecret(w *secretfile.Watcher, variable, file string) (func() string, error) {
	if file == "" {
		return nil, nil
	}
	var v secretfile.Value[string]
	err := w.Add(variable, file, func(b []byte) error {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return errors.New("file is empty")
		}
		v.Store(s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Load, nil
}

// watchClientKey watches AUTHGATE_CLIENT_PRIVATE_KEY_FILE and returns the
// private_key_jwt key in use, or nil when file is empty. With an empty
// AUTHGATE_CLIENT_KEY_ID the kid is the new key's thumbprint, so the
// provider finds it in the client's JWKS.
func watchClientKey(w *secretfile.Watcher, file, keyID string) (func() *idp.ClientKey, error) {
	if file == "" {
		return nil, nil
	}
	var v secretfile.Value[*idp.ClientKey]
	err := w.Add("AUTHGATE_CLIENT_PRIVATE_KEY_FILE", file, func(b []byte) error {
		k, err := idp.ParseClientKey(b, keyID)
		if err != nil {
			return err
		}
		v.Store(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Load, nil
}

// watchCookieKeys re-reads AUTHGATE_COOKIE_SECRET_FILE into sealer: a new
// first key seals from then on while the old ones still open; a key left
// out stops opening, and its sessions become fresh logins.
func watchCookieKeys(w *secretfile.Watcher, file string, sealer *session.Sealer) error {
	if file == "" {
		return nil
	}
	return w.Add("AUTHGATE_COOKIE_SECRET_FILE", file, func(b []byte) error {
		keys, err := parseCookieKeys(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		return sealer.SetKeys(keys)
	})
}

// parseCookieKeys decodes a comma-separated list of base64 32-byte keys.
// Its errors never quote a key.
func parseCookieKeys(list string) ([][]byte, error) {
	if list == "" {
		return nil, errors.New("no key")
	}
	var keys [][]byte
	var problems []error
	for i, part := range strings.Split(list, ",") {
		key, err := decodeKey(strings.TrimSpace(part))
		if err != nil {
			problems = append(problems, fmt.Errorf("key %d: %w", i+1, err))
			continue
		}
		keys = append(keys, key)
	}
	return keys, errors.Join(problems...)
}

// watchCA returns a TLS client configuration that trusts the system roots
// plus the PEM bundle in file, re-read when the file changes; nil when file
// is empty. host is the configured server's host, verified when the server
// is an IP address (see verifyWithPool).
func watchCA(w *secretfile.Watcher, variable, file, host string) (*tls.Config, error) {
	if file == "" {
		return nil, nil
	}
	var pool secretfile.Value[*x509.CertPool]
	err := w.Add(variable, file, func(b []byte) error {
		p, err := certPool(b)
		if err != nil {
			return err
		}
		pool.Store(p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return verifyWithPool(pool.Load, host), nil
}

// certPool is the system roots plus the certificates in pem.
func certPool(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}

// verifyWithPool returns a TLS client configuration that verifies the
// server's chain and name against the pool roots returns at each
// handshake. crypto/tls reads RootCAs once per configuration, and the
// configuration lives inside long-lived transports, so the standard
// verification is switched off and done here instead, the same way
// (x509.Certificate.Verify with the server name): a failure still aborts
// the handshake. A server reached by IP address sends no SNI, so the
// connection state carries no name; the certificate is then verified for
// host, the configured server's host (an IP address there too, normally).
func verifyWithPool(roots func() *x509.CertPool, host string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified in VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := cs.ServerName
			if name == "" {
				name = host
			}
			if name == "" {
				return errors.New("tls: no server name to verify the certificate against")
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			opts := x509.VerifyOptions{
				Roots:         roots(),
				DNSName:       name,
				Intermediates: x509.NewCertPool(),
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("tls: verify certificate: %w", err)
			}
			return nil
		},
	}
}

// hostOf returns the host (without port) of a URL, or "".
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
