package redisstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// redisServer is a real redis-server (or sentinel) child process on a
// loopback port. It is not daemonized and gets SIGKILL if the test binary
// dies, so nothing outlives the test.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	args []string // without --port
	conf string   // config file, for sentinels
	tls  *tls.Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// redisBinary returns the redis-server path, failing the test when it is
// not installed (the test script installs it: apt-get install redis-server).
func redisBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (apt-get install -y redis-server): %v", err)
	}
	return p
}

// startRedis starts redis-server with no persistence plus extra arguments
// and waits until it answers PING.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	args := append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
	return startServer(t, &redisServer{args: args})
}

// startServer picks a free port for s (and, for a cluster node, a free bus
// port at +10000), starts it and registers its end with t.Cleanup. A port
// taken between probing and binding gets another try.
func startServer(t testing.TB, s *redisServer) *redisServer {
	t.Helper()
	s.t = t
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	t.Cleanup(s.kill)
	var err error
	for range 3 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis: %v\n%s", err, s.logTail())
	return nil
}

// startSentinel starts a sentinel monitoring master as "m" with quorum 1
// and short timeouts, so a failover takes about a second.
func startSentinel(t testing.TB, master *redisServer) *redisServer {
	t.Helper()
	s := &redisServer{dir: t.TempDir()}
	s.conf = filepath.Join(s.dir, "sentinel.conf")
	conf := fmt.Sprintf(`bind 127.0.0.1
daemonize no
dir %s
sentinel monitor m 127.0.0.1 %d 1
sentinel down-after-milliseconds m 300
sentinel failover-timeout m 3000
sentinel parallel-syncs m 1
`, s.dir, master.port)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, s)
}

// freePort returns a loopback port nobody listens on, whose cluster bus
// port (+10000) is free too.
func freePort(t testing.TB) int {
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

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the process on s.port and waits for PING.
func (s *redisServer) start() error {
	bin := redisBinary(s.t)
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
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ping() {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited", s.port)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, startTimeout)
		}
	}
}

// ping sends a raw PING and reports whether the server answered: +PONG,
// or an authentication error, which also means it is up.
func (s *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", s.addr(), time.Second)
	if err != nil {
		return false
	}
	if s.tls != nil {
		cfg := s.tls.Clone()
		cfg.ServerName = "127.0.0.1"
		c = tls.Client(c, cfg)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// kill ends the process with SIGKILL, like a crash, and waits for it.
func (s *redisServer) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// restart starts the server again on the same port with the same data
// directory.
func (s *redisServer) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart redis: %v\n%s", err, s.logTail())
	}
}

// logTail returns the end of the server's log, for failure messages.
func (s *redisServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// client returns a plain go-redis client for s (db 0), closed at cleanup;
// tests use it to look at what the store wrote.
func (s *redisServer) client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr(), TLSConfig: s.tls})
	t.Cleanup(func() { c.Close() })
	return c
}

// storeClient returns a client made by NewClient for s, closed at cleanup.
func (s *redisServer) storeClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	c, err := NewClient(ClientOptions{URL: "redis://" + s.addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every 20 ms until it holds or timeout passes. It
// waits for another process (a failover, a restart, a pub/sub delivery),
// which no injected clock can speed up.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
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
