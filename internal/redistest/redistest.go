// Package redistest runs real Redis servers for tests: redis-server child
// processes on free loopback ports (standalone, replica, Sentinel, Cluster)
// that a test can kill like a crash and restart with their data.
//
// It speaks just enough of the Redis protocol (RESP) to wait for a server
// (PING) and to look inside it (Do), so it needs no Redis client library
// and any package's tests can use it.
//
// redis-server must be installed (Debian: apt-get install redis-server;
// the cluster helper also needs redis-cli from redis-tools). A missing
// binary fails the test rather than skipping it.
package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Options configures StartWith. The zero value starts a redis-server with
// its built-in defaults on a free loopback port.
type Options struct {
	// Args are passed to redis-server after the port and data directory,
	// so they may override either. Nil passes none.
	Args []string
	// Dir is the data directory (where an append-only file survives a
	// restart); empty means a new t.TempDir().
	Dir string
	// TLS, when set, makes the server's port a TLS port (--tls-port; Args
	// must name the certificate files and should pass "--port 0") and is
	// the client configuration Ping and Do dial with. ServerName is set to
	// 127.0.0.1 when empty. Nil means plain text.
	TLS *tls.Config

	// sentinel is the content of a Sentinel configuration file; when set
	// the process runs as a sentinel.
	sentinel string
}

// Server is a real redis-server (or sentinel) child process on 127.0.0.1.
// It is not daemonized and gets SIGKILL if the test process dies, so
// nothing outlives the test; the test's cleanup kills it too. Methods are
// safe for concurrent use except Restart, which must not race Kill.
type Server struct {
	t    testing.TB
	port int
	dir  string
	conf string // sentinel configuration file
	args []string
	tls  *tls.Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a redis-server bound to 127.0.0.1 without persistence
// (--save "" --appendonly no) plus args, which may override those (for
// example "--appendonly", "yes" so that data survives Kill and Restart),
// and waits until it answers PING.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Args: append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)})
}

// StartWith starts a server as o says on a free port and waits until it
// answers PING. A port taken between probing and binding gets another try.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, dir: o.Dir, args: o.Args}
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	if o.TLS != nil {
		s.tls = o.TLS.Clone()
		if s.tls.ServerName == "" {
			s.tls.ServerName = "127.0.0.1"
		}
	}
	if o.sentinel != "" {
		s.conf = filepath.Join(s.dir, "sentinel.conf")
	}
	t.Cleanup(s.Kill)
	var err error
	for range 3 {
		s.port = FreePort(t)
		if s.conf != "" {
			// A sentinel rewrites its file; each attempt starts afresh.
			if err := os.WriteFile(s.conf, []byte(o.sentinel), 0o600); err != nil {
				t.Fatalf("write sentinel config: %v", err)
			}
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis: %v\n%s", err, s.LogTail())
	return nil
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// URL returns redis://127.0.0.1:port, or rediss:// for a TLS server.
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Kill ends the process with SIGKILL, like a crash, and waits for it to
// exit. Killing a server that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port with the same data
// directory and arguments, and waits until it answers PING. Data written
// before Kill is back only if persistence was on (--appendonly yes).
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart redis: %v\n%s", err, s.LogTail())
	}
}

// LogTail returns the end of the server's log, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// binary returns the redis-server path, failing the test when it is not
// installed.
func binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (apt-get install -y redis-server): %v", err)
	}
	return p
}

// start runs the process on s.port and waits for PING.
func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		args = append(args, s.conf, "--sentinel")
	}
	port := "--port"
	if s.tls != nil {
		port = "--tls-port"
	}
	args = append(args, port, strconv.Itoa(s.port), "--dir", s.dir, "--logfile", "")
	args = append(args, s.args...)
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(binary(s.t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !s.Ping() {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited", s.port)
		case <-deadline.C:
			s.Kill()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, startTimeout)
		case <-tick.C:
		}
	}
	return nil
}

// FreePort returns a loopback port nobody listens on whose Cluster bus
// port (+10000) is free too.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair")
	return 0
}

// Eventually polls cond every 20 ms until it holds, failing the test with
// what when timeout passes first. It is for waiting on another process (a
// failover, a restart, a pub/sub delivery), which no injected clock can
// speed up; timeout is a bound, never a measurement.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still false after %v", what, timeout)
		case <-tick.C:
		}
	}
}
