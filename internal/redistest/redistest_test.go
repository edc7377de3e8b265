package redistest

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestKillRestartKeepsAppendOnlyData(t *testing.T) {
	srv := Start(t, "--appendonly", "yes", "--appendfsync", "always")
	if got := srv.URL(); got != "redis://"+srv.Addr() {
		t.Errorf("URL() = %q, want redis://%s", got, srv.Addr())
	}
	if v, err := srv.Do("SET", "k", "v w\r\nx"); v != "OK" || err != nil {
		t.Fatalf("SET = %v, %v; want OK", v, err)
	}
	srv.Kill()
	if srv.Ping() {
		t.Fatal("Ping after Kill = true, want false")
	}
	if _, err := srv.Do("GET", "k"); err == nil {
		t.Error("GET after Kill = nil error, want a dial error")
	}
	srv.Kill() // a second Kill does nothing

	port := srv.Port()
	srv.Restart()
	if srv.Port() != port {
		t.Errorf("Port() after Restart = %d, want %d", srv.Port(), port)
	}
	if v, err := srv.Do("GET", "k"); v != "v w\r\nx" || err != nil {
		t.Errorf("GET after Restart = %q, %v; want the value written before Kill", v, err)
	}
}

func TestDoReplies(t *testing.T) {
	srv := Start(t)
	tests := []struct {
		name    string
		args    []string
		want    any
		wantErr string
	}{
		{name: "simple string", args: []string{"PING"}, want: "PONG"},
		{name: "integer", args: []string{"INCR", "n"}, want: int64(1)},
		{name: "null bulk", args: []string{"GET", "missing"}, want: nil},
		{name: "array", args: []string{"MGET", "n", "missing"}, want: []any{"1", nil}},
		{name: "error", args: []string{"NOSUCHCOMMAND"}, wantErr: "ERR unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := srv.Do(tt.args...)
			if tt.wantErr != "" {
				var reply ErrorReply
				if !errors.As(err, &reply) || !strings.HasPrefix(string(reply), tt.wantErr) {
					t.Fatalf("Do(%q) error = %v, want an ErrorReply starting %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Do(%q) = %#v, %v; want %#v", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestReadReplyRejectsMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{name: "unknown type", in: "?x\r\n"},
		{name: "bad integer", in: ":x\r\n"},
		{name: "short bulk", in: "$5\r\nab\r\n"},
		{name: "huge bulk", in: "$999999999999\r\n"},
		{name: "truncated array", in: "*2\r\n+a\r\n"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := readReply(bufio.NewReader(strings.NewReader(tt.in))); err == nil {
				t.Errorf("readReply(%q) = %v, nil; want an error", tt.in, v)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	s := StartSentinels(t)
	if got, err := s.MasterAddr(); got != s.Master.Addr() || err != nil {
		t.Fatalf("MasterAddr() = %q, %v; want %q", got, err, s.Master.Addr())
	}
	if _, err := s.Master.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Replicate(t)
	if v, err := s.Replica.Do("GET", "k"); v != "v" || err != nil {
		t.Errorf("GET on the replica = %v, %v; want v", v, err)
	}
}
