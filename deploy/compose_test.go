package deploy_test

import (
	"context"
	"flag"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

var composeDir = filepath.Join(repoRoot, "deploy", "compose")

// composeFiles are the Compose files and the authgate proxy services each
// runs: the whole list, so that a new file must be described here.
var composeFiles = map[string][]string{
	"compose.yaml":       {"authgate"},
	"compose.redis.yaml": {"authgate-1", "authgate-2"},
}

// loadCompose loads a Compose file with compose-go, as `docker compose`
// would (interpolation, merge keys, normalization, schema validation), with
// no environment from this process.
func loadCompose(t *testing.T, name string) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(composeDir)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, name)},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(nil),
		cli.WithDiscardEnvFile,
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func TestComposeFiles(t *testing.T) {
	got, err := filepath.Glob(filepath.Join(composeDir, "compose*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, filepath.Base(f))
	}
	if want := sortedKeys(composeFiles); !slices.Equal(names, want) {
		t.Fatalf("deploy/compose holds %q, composeFiles lists %q: keep them in step", names, want)
	}
	vars := configByName(t)
	demoFlags := readDemoFlags(t)
	secretsScript, err := os.ReadFile(filepath.Join(composeDir, "secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p := loadCompose(t, name)
			idp := demoService(t, p, "--idp-only", demoFlags)
			app := demoService(t, p, "--upstream-only", demoFlags)
			issuer := idp.flags["issuer"]
			if len(issuer) != 1 {
				t.Fatalf("service %s: --issuer given %d times, want once", idp.name, len(issuer))
			}
			for _, s := range p.Services {
				if strings.Contains(s.Image, "authgate") {
					checkHardened(t, s)
				}
				if s.HealthCheck == nil && s.Name != app.name && !isCheck(s) {
					t.Errorf("service %s has no healthcheck", s.Name)
				}
			}
			for _, secret := range p.Secrets {
				base := filepath.Base(secret.File)
				if !strings.Contains(string(secretsScript), "secrets/"+base) {
					t.Errorf("secret file %s: secrets.sh does not create it", secret.File)
				}
			}

			listeners := map[string]string{}
			for _, svcName := range composeFiles[name] {
				s, ok := p.Services[svcName]
				if !ok {
					t.Fatalf("no service %s", svcName)
				}
				if len(s.Command) != 0 {
					t.Errorf("service %s: command %q, want the image's default (the proxy)", s.Name, s.Command)
				}
				env := composeEnv(t, s)
				for key, value := range env {
					v, ok := vars[key]
					if !ok {
						continue // unknown names fail TestArtefactVariablesExist
					}
					if err := checkValue(v, value); err != nil {
						t.Errorf("service %s: %s=%q: %v", s.Name, key, value, err)
					}
				}
				checkProxyService(t, p, s, env, idp, app)

				// Replicas in one network namespace need their own ports.
				for _, key := range []string{"AUTHGATE_LISTEN_ADDR", "AUTHGATE_INTERNAL_ADDR"} {
					addr := env[key]
					if addr == "" {
						addr = vars[key].Default
					}
					_, port, err := net.SplitHostPort(addr)
					if err != nil {
						t.Errorf("service %s: %s=%q: %v", s.Name, key, addr, err)
						continue
					}
					if other, dup := listeners[port]; dup {
						t.Errorf("service %s: %s port %s is also taken by %s in the same network namespace", s.Name, key, port, other)
					}
					listeners[port] = s.Name + " " + key
				}
			}
			if _, port, _ := net.SplitHostPort(idp.flags["idp-listen"][0]); listeners[port] != "" {
				t.Errorf("the IdP's port %s is also taken by %s", port, listeners[port])
			}
		})
	}
}

// isCheck reports whether s is a one-shot `authgate check`.
func isCheck(s types.ServiceConfig) bool {
	return len(s.Command) == 1 && s.Command[0] == "check" && s.Restart == "no"
}

// TestComposeCheck: the Compose example runs `authgate check` once with the
// proxy's own environment and secrets, and the proxy waits for it to pass.
func TestComposeCheck(t *testing.T) {
	p := loadCompose(t, "compose.yaml")
	check, ok := p.Services["check"]
	if !ok || !isCheck(check) {
		t.Fatalf("compose.yaml: no one-shot check service (command [check], restart no)")
	}
	proxy := p.Services["authgate"]
	if got, want := composeEnv(t, check), composeEnv(t, proxy); !maps.Equal(got, want) {
		t.Errorf("check environment = %v, want the proxy's %v", got, want)
	}
	if check.NetworkMode != proxy.NetworkMode {
		t.Errorf("check network_mode = %q, want the proxy's %q", check.NetworkMode, proxy.NetworkMode)
	}
	if len(check.Secrets) != len(proxy.Secrets) {
		t.Errorf("check secrets = %v, want the proxy's %v", check.Secrets, proxy.Secrets)
	}
	if d, ok := proxy.DependsOn["check"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("authgate depends_on check = %+v, want service_completed_successfully", d)
	}
}

// demoCommand is a service running `authgate demo`, with its flags parsed.
type demoCommand struct {
	name  string
	flags map[string][]string
}

// demoService finds the one service that runs `authgate demo` with the
// given mode flag and parses its flags against those cmd/authgate/demo.go
// defines: a flag the code does not have fails.
func demoService(t *testing.T, p *types.Project, mode string, known map[string]bool) demoCommand {
	t.Helper()
	var found []demoCommand
	for _, s := range p.Services {
		if len(s.Command) == 0 || s.Command[0] != "demo" || !slices.Contains(s.Command, mode) {
			continue
		}
		fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		values := map[string][]string{}
		for name := range known {
			fs.Func(name, "", func(v string) error { values[name] = append(values[name], v); return nil })
		}
		for _, b := range []string{"idp-only", "upstream-only"} {
			fs.BoolFunc(b, "", func(string) error { values[b] = append(values[b], "true"); return nil })
		}
		if err := fs.Parse(s.Command[1:]); err != nil {
			t.Fatalf("service %s: command %q: %v (flags of cmd/authgate/demo.go: %v)", s.Name, s.Command, err, sortedKeys(known))
		}
		if fs.NArg() > 0 {
			t.Errorf("service %s: stray arguments %q", s.Name, fs.Args())
		}
		found = append(found, demoCommand{name: s.Name, flags: values})
	}
	if len(found) != 1 {
		t.Fatalf("%d services run `authgate demo %s`, want 1", len(found), mode)
	}
	return found[0]
}

var demoFlagPattern = regexp.MustCompile(`fs\.\w+\(&[\w.]+, "([a-z][a-z0-9-]*)"`)

// readDemoFlags returns the value flags of `authgate demo`, read from
// cmd/authgate/demo.go.
func readDemoFlags(t *testing.T) map[string]bool {
	t.Helper()
	path := filepath.Join(repoRoot, "cmd", "authgate", "demo.go")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the demo's flags: %v", err)
	}
	flags := map[string]bool{}
	for _, m := range demoFlagPattern.FindAllStringSubmatch(string(b), -1) {
		if m[1] != "idp-only" && m[1] != "upstream-only" {
			flags[m[1]] = true
		}
	}
	for _, want := range []string{"idp-listen", "upstream-listen", "issuer", "client-id", "client-secret-file", "redirect-url"} {
		if !flags[want] {
			t.Fatalf("%s: no --%s flag found (have %v)", path, want, sortedKeys(flags))
		}
	}
	return flags
}

// composeEnv returns a service's environment with every value set.
func composeEnv(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value (it would come from the host's environment)", s.Name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

func checkHardened(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if !s.ReadOnly {
		t.Errorf("service %s: read_only = false, want true", s.Name)
	}
	if !slices.Contains(s.CapDrop, "ALL") {
		t.Errorf("service %s: cap_drop = %v, want ALL", s.Name, s.CapDrop)
	}
	if s.User != "" && s.User != "65532" && s.User != "65532:65532" {
		t.Errorf("service %s: user = %q, want the image's (65532)", s.Name, s.User)
	}
}

// checkProxyService checks that an authgate service agrees with the demo IdP
// and app it is wired to, and that the browser reaches the same URLs.
func checkProxyService(t *testing.T, p *types.Project, s types.ServiceConfig, env map[string]string, idp, app demoCommand) {
	t.Helper()
	if got, want := env["AUTHGATE_OIDC_ISSUER_URL"], idp.flags["issuer"][0]; got != want {
		t.Errorf("service %s: AUTHGATE_OIDC_ISSUER_URL = %q, want the IdP's --issuer %q", s.Name, got, want)
	}
	if got, want := env["AUTHGATE_CLIENT_ID"], first(idp.flags["client-id"]); got != want {
		t.Errorf("service %s: AUTHGATE_CLIENT_ID = %q, want the IdP's --client-id %q", s.Name, got, want)
	}
	if got := env["AUTHGATE_REDIRECT_URL"]; !slices.Contains(idp.flags["redirect-url"], got) {
		t.Errorf("service %s: AUTHGATE_REDIRECT_URL %q is not registered at the IdP (--redirect-url %q)", s.Name, got, idp.flags["redirect-url"])
	}
	if got := env["AUTHGATE_POST_LOGOUT_REDIRECT_URL"]; got != "" && !slices.Contains(idp.flags["post-logout-redirect-url"], got) {
		t.Errorf("service %s: AUTHGATE_POST_LOGOUT_REDIRECT_URL %q is not registered at the IdP (%q)", s.Name, got, idp.flags["post-logout-redirect-url"])
	}
	// The same client secret on both sides: one Compose secret.
	if got, want := secretSource(s, env["AUTHGATE_CLIENT_SECRET_FILE"]), secretSource(p.Services[idp.name], first(idp.flags["client-secret-file"])); got == "" || got != want {
		t.Errorf("service %s: AUTHGATE_CLIENT_SECRET_FILE is Compose secret %q, the IdP's --client-secret-file is %q: want the same", s.Name, got, want)
	}
	if got := secretSource(s, env["AUTHGATE_COOKIE_SECRET_FILE"]); got == "" {
		t.Errorf("service %s: AUTHGATE_COOKIE_SECRET_FILE %q is not a Compose secret of the service", s.Name, env["AUTHGATE_COOKIE_SECRET_FILE"])
	}
	if env["AUTHGATE_COOKIE_SECRET"] != "" || env["AUTHGATE_CLIENT_SECRET"] != "" {
		t.Errorf("service %s: a secret in the environment; use the _FILE variants and Compose secrets", s.Name)
	}

	// authgate reaches the issuer over loopback in the IdP's network
	// namespace; the browser reaches it through the port the IdP publishes.
	if want := "service:" + idp.name; s.NetworkMode != want {
		t.Errorf("service %s: network_mode = %q, want %q (see README.md: one issuer URL for browser and authgate)", s.Name, s.NetworkMode, want)
	}
	issuer, err := url.Parse(idp.flags["issuer"][0])
	if err != nil {
		t.Fatal(err)
	}
	if !published(p.Services[idp.name], issuer.Host) {
		t.Errorf("the issuer %s is not published by service %s on %s", issuer, idp.name, issuer.Host)
	}
	redirect, err := url.Parse(env["AUTHGATE_REDIRECT_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if !published(p.Services[idp.name], redirect.Host) {
		t.Errorf("the redirect URL's %s is not published by service %s, the namespace authgate lives in", redirect.Host, idp.name)
	}
	if redirect.Scheme == "http" && env["AUTHGATE_COOKIE_SECURE"] != "false" {
		t.Errorf("service %s: plain-http redirect URL with secure cookies: the browser would drop them", s.Name)
	}

	upstream, err := url.Parse(env["AUTHGATE_UPSTREAM"])
	if err != nil {
		t.Fatal(err)
	}
	_, appPort, _ := net.SplitHostPort(first(app.flags["upstream-listen"]))
	if upstream.Hostname() != app.name || upstream.Port() != appPort {
		t.Errorf("service %s: AUTHGATE_UPSTREAM = %q, want http://%s:%s (the app's --upstream-listen)", s.Name, upstream, app.name, appPort)
	}

	if hc := s.HealthCheck; hc == nil || !slices.Equal([]string(hc.Test), []string{"CMD", "/authgate", "healthcheck"}) {
		t.Errorf("service %s: healthcheck = %+v, want [CMD /authgate healthcheck]", s.Name, s.HealthCheck)
	}
	if dep, ok := s.DependsOn[idp.name]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("service %s: depends_on %s = %+v, want condition service_healthy", s.Name, idp.name, dep)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// secretSource returns the Compose secret mounted at path in s, or "".
func secretSource(s types.ServiceConfig, path string) string {
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		if target == path {
			return sec.Source
		}
	}
	return ""
}

// published reports whether s publishes host:port on the host, for the
// browser, on that very address.
func published(s types.ServiceConfig, hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	for _, p := range s.Ports {
		if p.Published == port && (p.HostIP == host || (host == "localhost" && p.HostIP == "127.0.0.1")) {
			return true
		}
	}
	return false
}
