package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// errNotLoopback is wrapped when a target or listen address is not a
// loopback IP: the benchmark puts load on this machine only.
var errNotLoopback = errors.New("authgate-bench: not a loopback address")

// requireLoopbackURL accepts http URLs whose host is a literal loopback IP
// (127.0.0.0/8 or ::1). Names such as "localhost" are refused: what they
// resolve to is not this program's to decide.
func requireLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a URL", errNotLoopback, raw)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%w: %q is not http://", errNotLoopback, raw)
	}
	if !isLoopbackIP(u.Hostname()) {
		return fmt.Errorf("%w: %q", errNotLoopback, u.Host)
	}
	return nil
}

// requireLoopbackAddr accepts host:port with a literal loopback IP.
func requireLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !isLoopbackIP(host) {
		return fmt.Errorf("%w: %q", errNotLoopback, addr)
	}
	return nil
}

func isLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
