package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// child is a process this benchmark started and measures.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	// idleAfterLoginKiB is its RSS after one login, for the peers' idle
	// row; 0 when not measured.
	idleAfterLoginKiB int64
	// idleStartKiB is its RSS once it answered, before that login; 0 when
	// not measured (then the idle row reads it when it is printed).
	idleStartKiB int64
	idleSplit    procSample
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// startChild starts path with args and env; its stderr (and its stdout
// after the first line, when firstLine is set) goes to logPath. With
// firstLine, startChild waits up to 15s for the first line of stdout and
// returns it.
func startChild(name, path string, args, env []string, dir, logPath string, firstLine bool) (*child, string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stderr = logFile
	// The child dies with this program, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout io.ReadCloser
	if firstLine {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logFile.Close()
			return nil, "", fmt.Errorf("start %s: %w", name, err)
		}
	} else {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		if stdout != nil {
			r := bufio.NewReader(stdout)
			line, _ := r.ReadString('\n')
			lines <- strings.TrimSpace(line)
			io.Copy(logFile, r)
		}
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	if !firstLine {
		return c, "", nil
	}
	select {
	case line := <-lines:
		if line == "" {
			c.stop()
			return nil, "", fmt.Errorf("start %s: no output (see %s)", name, logPath)
		}
		return c, line, nil
	case <-time.After(15 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("start %s: no output within 15s (see %s)", name, logPath)
	}
}

// stop sends SIGTERM, waits up to 10s, then kills the child.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// alive returns an error when the child has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited: %v (see %s)", c.name, c.waitErr, c.logPath)
	default:
		return nil
	}
}

// parseListening decodes a server subcommand's first line:
// "listening ADDR [ADDR...]".
func parseListening(line string, want int) ([]string, error) {
	rest, ok := strings.CutPrefix(line, listeningPrefix)
	if !ok {
		return nil, fmt.Errorf("parse listening line: %q does not start with %q", line, listeningPrefix)
	}
	addrs := strings.Fields(rest)
	if len(addrs) != want {
		return nil, fmt.Errorf("parse listening line: %d addresses, want %d", len(addrs), want)
	}
	for _, a := range addrs {
		if err := benchnet.RequireLoopbackAddr(a); err != nil {
			return nil, fmt.Errorf("parse listening line: %w", err)
		}
	}
	return addrs, nil
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago. A process started with it may still lose a race for the port;
// it then fails to start and the benchmark says so.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitHTTP polls url until it answers 200, the child exits or timeout
// passes.
func waitHTTP(ctx context.Context, c *child, url string, timeout time.Duration) error {
	if err := benchnet.RequireLoopbackURL(url); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if err := c.alive(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (see %s)", c.name, timeout, c.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitTCP polls addr until it accepts a connection or timeout passes.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := c.alive(); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections within %s (see %s)", c.name, timeout, c.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childEnv returns this process's environment without any AUTHGATE_
// variable, plus extra: a child must see only the configuration the
// benchmark gives it.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
