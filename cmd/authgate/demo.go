//go:build !nodemo

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authgate/authgate/internal/demoidp"
	"github.com/authgate/authgate/internal/whoami"
)

// demoFlags are the flags of `authgate demo`.
type demoFlags struct {
	listen, idpListen, upstreamListen, internalListen string
	idpOnly, upstreamOnly                             bool
	issuer, clientID, clientSecret, clientSecretFile  string
	redirectURLs, postLogoutURLs                      listFlag
	tokenLifetime                                     time.Duration
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseDemoFlags(args []string, stderr io.Writer) (*demoFlags, error) {
	f := &demoFlags{}
	fs := flag.NewFlagSet("authgate demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:4180", "authgate listener")
	fs.StringVar(&f.internalListen, "internal-listen", "127.0.0.1:4181", "authgate's /healthz, /readyz and /metrics listener")
	fs.StringVar(&f.idpListen, "idp-listen", "127.0.0.1:9000", "demo identity provider listener")
	fs.StringVar(&f.upstreamListen, "upstream-listen", "127.0.0.1:9001", "whoami upstream listener")
	fs.BoolVar(&f.idpOnly, "idp-only", false, "run only the demo identity provider (for Compose or a local cluster)")
	fs.BoolVar(&f.upstreamOnly, "upstream-only", false, "run only the whoami upstream (the sample app)")
	fs.StringVar(&f.issuer, "issuer", "", "issuer URL the identity provider announces (default http://<idp-listen>/)")
	fs.StringVar(&f.clientID, "client-id", "authgate-demo", "client registered at the demo identity provider")
	fs.StringVar(&f.clientSecret, "client-secret", "", "its secret (default demo-secret)")
	fs.StringVar(&f.clientSecretFile, "client-secret-file", "", "file holding the client secret")
	fs.Var(&f.redirectURLs, "redirect-url", "redirect URI registered for the client (repeatable)")
	fs.Var(&f.postLogoutURLs, "post-logout-redirect-url", "post-logout redirect URI registered for the client (repeatable)")
	fs.DurationVar(&f.tokenLifetime, "token-lifetime", time.Minute, "access and ID token lifetime")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.idpOnly && f.upstreamOnly {
		return nil, errors.New("--idp-only and --upstream-only exclude each other")
	}
	if f.clientSecret != "" && f.clientSecretFile != "" {
		return nil, errors.New("set --client-secret or --client-secret-file, not both")
	}
	if f.clientSecretFile != "" {
		b, err := os.ReadFile(f.clientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--client-secret-file: %w", err)
		}
		f.clientSecret = strings.TrimSpace(string(b))
	}
	if f.clientSecret == "" {
		f.clientSecret = "demo-secret"
	}
	if f.tokenLifetime < 5*time.Second {
		return nil, errors.New("--token-lifetime must be at least 5s")
	}
	return f, nil
}

// runDemo runs the demo: the built-in identity provider, the whoami
// upstream and authgate in front of them, configured through the same
// environment variables and code path as production.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authgate demo: %v\n", err)
		return 2
	}
	if err := f.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "authgate demo: %v\n", err)
		return 1
	}
	return 0
}

func (f *demoFlags) run(ctx context.Context, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if f.upstreamOnly {
		ln, err := net.Listen("tcp", f.upstreamListen)
		if err != nil {
			return fmt.Errorf("--upstream-listen: %w", err)
		}
		fmt.Fprintf(stdout, "whoami upstream listening on http://%s/\n", ln.Addr())
		return serveUntilDone(ctx, ln, whoami.New(whoami.Options{Logger: logger}))
	}

	full := !f.idpOnly
	if full {
		// The whole demo stays on this machine: it has well-known passwords.
		for name, addr := range map[string]string{"--listen": f.listen, "--idp-listen": f.idpListen, "--upstream-listen": f.upstreamListen, "--internal-listen": f.internalListen} {
			if !isLoopback(addr) {
				return fmt.Errorf("%s %s: the demo listens on loopback only (use --idp-only or --upstream-only to serve a network)", name, addr)
			}
		}
	}
	idpLn, err := net.Listen("tcp", f.idpListen)
	if err != nil {
		return fmt.Errorf("--idp-listen: %w", err)
	}
	issuer := f.issuer
	if issuer == "" {
		issuer = "http://" + idpLn.Addr().String() + "/"
	}

	var proxyLn, upstreamLn net.Listener
	redirects, postLogout := f.redirectURLs, f.postLogoutURLs
	if full {
		if proxyLn, err = net.Listen("tcp", f.listen); err != nil {
			idpLn.Close()
			return fmt.Errorf("--listen: %w", err)
		}
		if upstreamLn, err = net.Listen("tcp", f.upstreamListen); err != nil {
			idpLn.Close()
			proxyLn.Close()
			return fmt.Errorf("--upstream-listen: %w", err)
		}
		base := "http://" + proxyLn.Addr().String()
		redirects = append(redirects, base+"/oauth2/callback")
		postLogout = append(postLogout, base+"/")
	} else if len(redirects) == 0 {
		redirects = []string{"http://127.0.0.1:4180/oauth2/callback", "http://localhost:4180/oauth2/callback"}
		if len(postLogout) == 0 {
			postLogout = []string{"http://127.0.0.1:4180/", "http://localhost:4180/"}
		}
	}

	idp, err := demoidp.New(demoidp.Options{
		Issuer: issuer,
		Clients: []demoidp.Client{{
			ID: f.clientID, Secret: f.clientSecret,
			RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout,
		}},
		AccessTokenLifetime: f.tokenLifetime,
		IDTokenLifetime:     f.tokenLifetime,
		Logger:              logger,
	})
	if err != nil {
		return fmt.Errorf("start identity provider: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- serveUntilDone(ctx, idpLn, idp.Handler()) }()
	running := 1

	if !full {
		fmt.Fprintf(stdout, "demo identity provider: issuer %s\nclient %s, redirect URIs %s\n", issuer, f.clientID, strings.Join(redirects, ", "))
		printUsers(stdout)
		return <-errc
	}

	go func() { errc <- serveUntilDone(ctx, upstreamLn, whoami.New(whoami.Options{Logger: logger})) }()
	running++

	// authgate itself: configured through the environment, like production.
	// Variables already set win, so `AUTHGATE_ALLOWED_GROUPS=admins authgate
	// demo` tries out a setting.
	base := "http://" + proxyLn.Addr().String()
	for k, v := range map[string]string{
		"AUTHGATE_UPSTREAM":        "http://" + upstreamLn.Addr().String(),
		"AUTHGATE_OIDC_ISSUER_URL": issuer,
		"AUTHGATE_CLIENT_ID":       f.clientID,
		"AUTHGATE_CLIENT_SECRET":   f.clientSecret,
		"AUTHGATE_COOKIE_SECRET":   randomKey(),
		"AUTHGATE_REDIRECT_URL":    base + "/oauth2/callback",
		"AUTHGATE_INTERNAL_ADDR":   f.internalListen,
		"AUTHGATE_COOKIE_SECURE":   "false",
		"AUTHGATE_SCOPES":          "openid,email,profile,groups,offline_access",
		"AUTHGATE_REFRESH_SKEW":    (f.tokenLifetime / 4).String(),
		"AUTHGATE_LOG_FORMAT":      "text",
	} {
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, v)
		}
	}
	cfg, err := loadConfig()
	if err != nil {
		return fmt.Errorf("configure authgate: %w", err)
	}
	m, err := NewMain(cfg, MainOptions{LogOutput: stderr, ProxyListener: proxyLn})
	if err != nil {
		return err
	}
	go func() { errc <- m.Run(ctx) }()
	running++

	fmt.Fprintf(stdout, "\nauthgate demo is running. Open %s/ in a browser.\n\n", base)
	printUsers(stdout)
	fmt.Fprintf(stdout, "\nTokens live %s and are refreshed %s before they expire; the page shows it happen.\n", f.tokenLifetime, cfg.RefreshSkew)
	fmt.Fprintf(stdout, "identity provider: %s   upstream: http://%s/   metrics: http://%s/metrics\nPress Ctrl-C to stop.\n",
		issuer, upstreamLn.Addr(), m.InternalAddr())

	// The first part to stop (Ctrl-C, or a failure) stops the others.
	var first error
	for range running {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
		cancel()
	}
	return first
}

func printUsers(w io.Writer) {
	fmt.Fprintln(w, "Demo users (username / password):")
	for _, u := range demoidp.DefaultUsers() {
		groups := strings.Join(u.Groups, ", ")
		if groups == "" {
			groups = "no groups"
		}
		verified := ""
		if !u.EmailVerified {
			verified = ", email not verified"
		}
		fmt.Fprintf(w, "  %-6s / %-9s  %s (%s%s)\n", u.Username, u.Password, u.Email, groups, verified)
	}
}

// serveUntilDone serves h on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func randomKey() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}
