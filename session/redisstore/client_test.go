package redisstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
)

const testPassword = "hunter2-secret"

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name string
		o    ClientOptions
		want []string
	}{
		{name: "nothing", want: []string{"AUTHGATE_REDIS_URL", "AUTHGATE_REDIS_ADDRS"}},
		{name: "url and addrs", o: ClientOptions{URL: "redis://h:1", Addrs: []string{"h:2"}, Cluster: true},
			want: []string{"AUTHGATE_REDIS_URL and AUTHGATE_REDIS_ADDRS are both set"}},
		{name: "addrs alone", o: ClientOptions{Addrs: []string{"h:1"}},
			want: []string{"AUTHGATE_REDIS_SENTINEL_MASTER", "AUTHGATE_REDIS_CLUSTER=true"}},
		{name: "sentinel and cluster", o: ClientOptions{Addrs: []string{"h:1"}, SentinelMaster: "m", Cluster: true},
			want: []string{"both set"}},
		{name: "sentinel with url", o: ClientOptions{URL: "redis://h:1", SentinelMaster: "m"},
			want: []string{"AUTHGATE_REDIS_SENTINEL_MASTER needs the sentinel addresses"}},
		{name: "bad addr", o: ClientOptions{Addrs: []string{"h"}, Cluster: true},
			want: []string{`AUTHGATE_REDIS_ADDRS entry "h" is not host:port`}},
		{name: "bad scheme", o: ClientOptions{URL: "http://:" + testPassword + "@h:1"},
			want: []string{"scheme must be redis or rediss"}},
		{name: "unparsable url", o: ClientOptions{URL: "redis://:" + testPassword + "@h:port/"},
			want: []string{"AUTHGATE_REDIS_URL is not a valid URL"}},
		{name: "no host", o: ClientOptions{URL: "redis:///3"}, want: []string{"no host"}},
		{name: "two passwords", o: ClientOptions{URL: "redis://:" + testPassword + "@h:1", Password: testPassword},
			want: []string{"password is both in AUTHGATE_REDIS_URL and set on its own"}},
		{name: "two users", o: ClientOptions{URL: "redis://u@h:1", Username: "v"}, want: []string{"user name is both"}},
		{name: "tls with redis://", o: ClientOptions{URL: "redis://h:1", TLS: &tls.Config{}}, want: []string{"use rediss://"}},
		{name: "bad db path", o: ClientOptions{URL: "redis://:" + testPassword + "@h:1/x"},
			want: []string{"parse AUTHGATE_REDIS_URL", "invalid database number"}},
		{name: "unknown parameter", o: ClientOptions{URL: "redis://:" + testPassword + "@h:1/?bogus=1"},
			want: []string{"parse AUTHGATE_REDIS_URL"}},
		{name: "cluster db", o: ClientOptions{URL: "redis://h:1/2", Cluster: true}, want: []string{"only database 0"}},
		{name: "db with url", o: ClientOptions{URL: "redis://h:1", DB: 2}, want: []string{"AUTHGATE_REDIS_URL path"}},
		{name: "negative", o: ClientOptions{URL: "redis://h:1", DialTimeout: -1, PoolSize: -1},
			want: []string{"dial timeout -1ns is negative", "pool size -1 is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.o)
			if err == nil {
				c.Close()
				t.Fatalf("NewClient = nil error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewClient error = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("NewClient error = %q contains the password", err)
			}
		})
	}
}

func TestNewClientDefaults(t *testing.T) {
	tests := []struct {
		name      string
		o         ClientOptions
		wantDial  time.Duration
		wantRead  time.Duration
		wantRetry int
	}{
		{name: "defaults", o: ClientOptions{URL: "redis://127.0.0.1:1"},
			wantDial: DefaultDialTimeout, wantRead: DefaultReadTimeout, wantRetry: commandRetries},
		{name: "from url", o: ClientOptions{URL: "redis://127.0.0.1:1?dial_timeout=5s&read_timeout=3s&max_retries=4"},
			wantDial: 5 * time.Second, wantRead: 3 * time.Second, wantRetry: 4},
		{name: "explicit beats url", o: ClientOptions{URL: "redis://127.0.0.1:1?dial_timeout=5s", DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond},
			wantDial: time.Second, wantRead: 500 * time.Millisecond, wantRetry: commandRetries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			o := c.(*redis.Client).Options()
			if o.DialTimeout != tt.wantDial || o.ReadTimeout != tt.wantRead || o.MaxRetries != tt.wantRetry {
				t.Errorf("options: dial %v, read %v, retries %d; want %v, %v, %d",
					o.DialTimeout, o.ReadTimeout, o.MaxRetries, tt.wantDial, tt.wantRead, tt.wantRetry)
			}
			if o.WriteTimeout != or(tt.o.WriteTimeout, DefaultWriteTimeout) && tt.name == "defaults" {
				t.Errorf("write timeout = %v, want %v", o.WriteTimeout, DefaultWriteTimeout)
			}
			if o.ReadBufferSize != connBufferSize || o.WriteBufferSize != connBufferSize ||
				o.PipelineReadBufferSize != connBufferSize || o.PipelineWriteBufferSize != connBufferSize {
				t.Errorf("buffers: read %d, write %d, pipeline %d/%d; want %d each (go-redis's 32/128 KiB defaults cost RSS per connection)",
					o.ReadBufferSize, o.WriteBufferSize, o.PipelineReadBufferSize, o.PipelineWriteBufferSize, connBufferSize)
			}
		})
	}
}

// TestNewClientBuffersSentinelAndCluster: the small buffers apply in every
// mode, not only to a standalone URL.
func TestNewClientBuffersSentinelAndCluster(t *testing.T) {
	sentinel, err := NewClient(ClientOptions{Addrs: []string{"127.0.0.1:1"}, SentinelMaster: "mymaster"})
	if err != nil {
		t.Fatal(err)
	}
	defer sentinel.Close()
	if o := sentinel.(*redis.Client).Options(); o.ReadBufferSize != connBufferSize || o.WriteBufferSize != connBufferSize {
		t.Errorf("sentinel buffers: read %d, write %d; want %d", o.ReadBufferSize, o.WriteBufferSize, connBufferSize)
	}
	cluster, err := NewClient(ClientOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Cluster: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	if o := cluster.(*redis.ClusterClient).Options(); o.ReadBufferSize != connBufferSize || o.WriteBufferSize != connBufferSize {
		t.Errorf("cluster buffers: read %d, write %d; want %d", o.ReadBufferSize, o.WriteBufferSize, connBufferSize)
	}
}

func TestNewClientAuthAndDB(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", testPassword)
	ctx := context.Background()
	tests := []struct {
		name    string
		o       ClientOptions
		wantErr bool
	}{
		{name: "password in url", o: ClientOptions{URL: "redis://:" + testPassword + "@" + srv.Addr() + "/3"}},
		{name: "password on its own", o: ClientOptions{URL: "redis://" + srv.Addr() + "/3", Password: testPassword}},
		{name: "acl default user", o: ClientOptions{URL: "redis://default@" + srv.Addr() + "/3", Password: testPassword}},
		{name: "wrong password", o: ClientOptions{URL: "redis://" + srv.Addr() + "/3", Password: "wrong-" + testPassword}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Set(ctx, "k-"+tt.name, "v", time.Minute).Err()
			if tt.wantErr {
				if err == nil {
					t.Fatal("SET = nil error, want an authentication error")
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Errorf("error %q contains the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SET = %v", err)
			}
			// The key went to database 3, not 0.
			for db, want := range map[int]int64{0: 0, 3: 1} {
				raw := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: testPassword, DB: db})
				got := raw.Exists(ctx, "k-"+tt.name).Val()
				raw.Close()
				if got != want {
					t.Errorf("EXISTS in db %d = %d, want %d", db, got, want)
				}
			}
		})
	}
}

func TestNewClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, certFile, keyFile, caFile := writeTestCert(t, dir)
	srv := redistest.StartWith(t, redistest.Options{
		Args: []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port", "0",
			"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"},
		TLS: &tls.Config{RootCAs: ca},
	})
	ctx := context.Background()

	tests := []struct {
		name    string
		o       ClientOptions
		wantErr bool
	}{
		{name: "private ca", o: ClientOptions{URL: "rediss://" + srv.Addr(), TLS: &tls.Config{RootCAs: ca}}},
		{name: "system roots", o: ClientOptions{URL: "rediss://" + srv.Addr()}, wantErr: true},
		{name: "plain text to tls port", o: ClientOptions{URL: "redis://" + srv.Addr()}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(ctx).Err()
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("PING = %v, want error: %v", err, tt.wantErr)
			}
			var unknown x509.UnknownAuthorityError
			if tt.name == "system roots" && !errors.As(err, &unknown) {
				t.Errorf("PING = %v, want x509.UnknownAuthorityError", err)
			}
		})
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and
// returns a pool trusting it and the file names.
func writeTestCert(t *testing.T, dir string) (pool *x509.CertPool, certFile, keyFile, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redisstore test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pool, certFile, keyFile, certFile
}

// TestNewClientPasswordFunc: a rotated password applies to new connections
// without a new client; open connections stay authenticated.
func TestNewClientPasswordFunc(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", testPassword)
	ctx := context.Background()
	var password atomic.Value
	password.Store(testPassword)
	{
		o := ClientOptions{URL: "redis://" + srv.Addr(), PasswordFunc: func() string { return password.Load().(string) }}
		c, err := NewClient(o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING with the first password = %v", err)
		}

		const rotated = "rotated-" + testPassword
		admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: testPassword})
		defer admin.Close()
		if err := admin.ConfigSet(ctx, "requirepass", rotated).Err(); err != nil {
			t.Fatal(err)
		}
		password.Store(rotated)
		// Drop every connection but the admin's, so the client must
		// authenticate again.
		if err := admin.Do(ctx, "CLIENT", "KILL", "SKIPME", "yes").Err(); err != nil {
			t.Fatal(err)
		}
		var pingErr error
		for range 3 { // the first command may find its pooled connection dead
			if pingErr = c.Ping(ctx).Err(); pingErr == nil {
				break
			}
		}
		if pingErr != nil {
			t.Errorf("PING after rotation = %v", pingErr)
		}
		if got, err := admin.ConfigGet(ctx, "requirepass").Result(); err != nil || got["requirepass"] != rotated {
			t.Errorf("server password not rotated: %v %v", got, err)
		}
	}
	if _, err := NewClient(ClientOptions{URL: "redis://" + srv.Addr(), Password: "x", PasswordFunc: func() string { return "y" }}); err == nil {
		t.Error("NewClient with Password and PasswordFunc succeeded")
	}
}
