package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval bounds how often the certificate files are stat'ed: the
// handshake path must not touch the disk on every connection.
const certCheckInterval = time.Second

// certReloader serves the certificate in certFile/keyFile and loads it again
// when either file changes (cert-manager and Kubernetes Secret volumes
// replace files in place). A broken new pair is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	modTime   time.Time // latest of the two files' mtimes when loaded
	checkedAt time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	mod, err := c.modified()
	if err != nil {
		return nil, fmt.Errorf("AUTHGATE_TLS_CERT_FILE: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("AUTHGATE_TLS_CERT_FILE and AUTHGATE_TLS_KEY_FILE: load key pair: %w", err)
	}
	c.cert, c.modTime, c.checkedAt = &cert, mod, c.now()
	return c, nil
}

// modified returns the later modification time of the two files.
func (c *certReloader) modified() (time.Time, error) {
	var latest time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return time.Time{}, fmt.Errorf("stat %s: %w", f, err)
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest, nil
}

// GetCertificate fits tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.checkedAt) < certCheckInterval {
		return c.cert, nil
	}
	c.checkedAt = now
	mod, err := c.modified()
	if err != nil || mod.Equal(c.modTime) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// Often a half-written pair; keep serving the old one and retry.
		c.log.Warn("TLS certificate changed but does not load; keeping the previous one", "error", err.Error())
		return c.cert, nil
	}
	c.cert, c.modTime = &cert, mod
	c.log.Info("TLS certificate reloaded", "file", c.certFile)
	return c.cert, nil
}
