package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// doTimeout bounds one Do or Ping: dial, write and read.
const doTimeout = 2 * time.Second

// maxBulk bounds one bulk string a reply may carry.
const maxBulk = 64 << 20

// ErrorReply is a Redis error reply ("-ERR ...", "-NOAUTH ..."), returned
// by Do as its error.
type ErrorReply string

func (e ErrorReply) Error() string { return "redis: " + string(e) }

// Ping reports whether the server answers PING: with PONG, or with an
// authentication error, which also means it is up.
func (s *Server) Ping() bool {
	_, err := s.Do("PING")
	var reply ErrorReply
	return err == nil || (errors.As(err, &reply) && strings.HasPrefix(string(reply), "NOAUTH"))
}

// Do sends one command on a new connection and returns the reply (RESP2):
// a string for a simple or bulk string, an int64 for an integer, a []any
// for an array, nil for a null reply; an error reply is returned as an
// ErrorReply error. For example
//
//	info, err := srv.Do("INFO", "replication")
func (s *Server) Do(args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), doTimeout)
	if err != nil {
		return nil, fmt.Errorf("dial redis: %w", err)
	}
	if s.tls != nil {
		c = tls.Client(c, s.tls)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(doTimeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, fmt.Errorf("send %s: %w", firstWord(args), err)
	}
	v, err := readReply(bufio.NewReader(c))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", firstWord(args), err)
	}
	return v, nil
}

// DoString is Do for a command whose reply is a string (INFO, CLUSTER
// INFO); any other reply is an error.
func (s *Server) DoString(args ...string) (string, error) {
	v, err := s.Do(args...)
	if err != nil {
		return "", err
	}
	str, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: reply %T, want a string", firstWord(args), v)
	}
	return str, nil
}

func firstWord(args []string) string {
	if len(args) == 0 {
		return "(empty command)"
	}
	return args[0]
}

// readReply reads one RESP2 value.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("read reply: empty line")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return rest, nil
	case '-':
		return nil, ErrorReply(rest)
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read integer reply: %w", err)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(rest)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read bulk length: %w", err)
		case n < 0:
			return nil, nil
		case n > maxBulk:
			return nil, fmt.Errorf("read bulk: %d bytes is too long", n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read bulk: %w", err)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(rest)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read array length: %w", err)
		case n < 0:
			return nil, nil
		}
		arr := make([]any, 0, min(n, 1024))
		for range n {
			v, err := readReply(r)
			var reply ErrorReply
			if errors.As(err, &reply) {
				// An error inside an array (EXEC) is a value, not a failure.
				arr = append(arr, reply)
				continue
			}
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("read reply: unknown type %q", kind)
}
