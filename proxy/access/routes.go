package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"sigs.k8s.io/yaml"
)

// RouteSpec is one entry of a routes file (AUTHGATE_ROUTES_FILE or
// AUTHGATE_ROUTES), as written by the operator:
//
//   - name: admin              # optional: names the route in logs and metrics
//     match: "/admin/"         # [METHOD ]PATH, as AUTHGATE_PUBLIC_PATHS
//     allow: '"admins" in groups'
//   - match: "GET /status"
//     public: true
type RouteSpec struct {
	Name   string  `json:"name,omitempty"`
	Match  string  `json:"match"`
	Public bool    `json:"public,omitempty"`
	Allow  *string `json:"allow,omitempty"`
}

// ParseRouteSpecs reads a YAML (or JSON) list of routes. Unknown keys are
// errors, so a misspelt "alow:" does not silently leave a route without a
// rule. It checks only the syntax; CompileRoutes checks the routes.
func ParseRouteSpecs(data []byte) ([]RouteSpec, error) {
	var specs []RouteSpec
	if err := yaml.UnmarshalStrict(data, &specs); err != nil {
		return nil, fmt.Errorf("parse routes: %w", err)
	}
	if len(specs) == 0 {
		return nil, errors.New("parse routes: no routes: want a YAML list of {match, public|allow}")
	}
	return specs, nil
}

// NoRouteLabel stands for "no route matched" where a route's Label would
// go (logs, metrics); no route may be named so.
const NoRouteLabel = "none"

// maxRouteNameLen bounds a route's name, which becomes a metric label.
const maxRouteNameLen = 64

// Routes is an ordered list of compiled routes: the first whose pattern
// matches a request decides it. Build it with CompileRoutes. A nil *Routes
// has no routes: Match returns nil for every request, and callers fall
// back to AUTHGATE_PUBLIC_PATHS and the Policy.
type Routes struct {
	routes     []Route
	usesClaims bool
	usesGroups bool
}

// Route is one compiled route. Its zero value matches nothing.
type Route struct {
	// Index is the route's position in the file, from 0.
	Index int
	// Name is the route's optional name.
	Name string
	// Label names the route in logs and metrics: Name, or Index in decimal.
	Label string

	method  string // "" matches every method
	path    string // decoded; a trailing "/" makes a subtree
	subtree bool
	public  bool
	expr    string
	prg     cel.Program
	// usesClaims and usesHeaders say whether the expression reads claims or
	// request.headers, which are built for an evaluation only then.
	usesClaims  bool
	usesHeaders bool
	usesGroups  bool
}

// Request is what an allow expression sees as "request". Its fields are
// named in CEL by their cel tags: request.method, request.path (the
// normalised path the upstream receives), request.host and request.headers
// (lower-case names; several values joined with ", ").
type Request struct {
	Method  string            `cel:"method"`
	Path    string            `cel:"path"`
	Host    string            `cel:"host"`
	Headers map[string]string `cel:"headers"`
}

// Input is everything a route's allow expression may read about one
// request. The zero value is an anonymous request with no attributes.
type Input struct {
	// Subject is the sub claim; "" leaves sub unbound.
	Subject string
	// Email is bound as email when it is non-empty and EmailVerified is not
	// false (the upstream gets no address the IdP marked unverified either).
	Email         string
	EmailVerified *bool
	// Groups is bound as groups when GroupsKnown.
	Groups      []string
	GroupsKnown bool
	// Claims is the merged ID-token and userinfo claims (or the bearer
	// token's claims) as a JSON object; "" binds claims to an empty map.
	Claims string

	Method string
	// Path is the normalised path.
	Path string
	Host string
	// Header is the request's header; only the names for which
	// HeaderVisible returns true are shown to the expression.
	Header http.Header
	// HeaderVisible reports whether a header reaches the upstream as the
	// client sent it; nil shows none.
	HeaderVisible func(h http.Header, name string) bool
}

// newRouteEnv builds the CEL environment every allow expression is checked
// against. Variables are declared with their types so that a typo
// ("grops", "request.pth") fails at start, not on a request.
func newRouteEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Request](), ext.ParseStructTags(true)),
		ext.Strings(),
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("groups", cel.ListType(cel.StringType)),
		cel.Variable("email", cel.StringType),
		cel.Variable("sub", cel.StringType),
		cel.Variable("request", cel.ObjectType("access.Request")),
	)
}

var routeEnv = sync.OnceValues(newRouteEnv)

// CompileRoutes validates and compiles routes in order. Every problem is
// reported (the error joins one per problem, see errors.Join), each naming the route ("route 2 (admin)") and, for an
// expression, the line and column: a match that is not "[METHOD ]/path"
// in canonical form, a route with both or neither of public and allow, an
// expression that does not parse, does not type-check or is not a bool,
// and a name that is not [A-Za-z0-9_.-]{1,64} or is used twice.
func CompileRoutes(specs []RouteSpec) (*Routes, error) {
	env, err := routeEnv()
	if err != nil {
		return nil, fmt.Errorf("compile routes: build environment: %w", err)
	}
	rs := &Routes{routes: make([]Route, 0, len(specs))}
	var errs []error
	names := map[string]int{}
	for i, spec := range specs {
		rt := Route{Index: i, Name: spec.Name, Label: strconv.Itoa(i)}
		where := "route " + strconv.Itoa(i)
		if spec.Name != "" {
			where += " (" + spec.Name + ")"
			rt.Label = spec.Name
			if !validRouteName(spec.Name) {
				errs = append(errs, fmt.Errorf("%s: name %q: want 1 to %d of A-Z a-z 0-9 _ . -", where, spec.Name, maxRouteNameLen))
			} else if j, dup := names[spec.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: name %q is also route %d's", where, spec.Name, j))
			} else if spec.Name == NoRouteLabel {
				errs = append(errs, fmt.Errorf("%s: name %q is reserved for requests no route matches", where, spec.Name))
			} else if _, err := strconv.Atoi(spec.Name); err == nil {
				// A numeric name would be confused with another route's index.
				errs = append(errs, fmt.Errorf("%s: name %q: a number would read as a route index", where, spec.Name))
			}
			names[spec.Name] = i
		}
		if spec.Match == "" {
			errs = append(errs, fmt.Errorf("%s: match is required", where))
		} else if method, path, err := parsePattern(spec.Match); err != nil {
			errs = append(errs, fmt.Errorf("%s: match %q: %w", where, spec.Match, err))
		} else {
			decoded, err := url.PathUnescape(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: match %q: %w", where, spec.Match, err))
			}
			rt.method, rt.path, rt.subtree = method, decoded, strings.HasSuffix(decoded, "/")
		}
		switch {
		case spec.Public && spec.Allow != nil:
			errs = append(errs, fmt.Errorf("%s: has both public and allow; a public route needs no rule", where))
		case spec.Public:
			rt.public = true
		case spec.Allow == nil:
			errs = append(errs, fmt.Errorf("%s: needs public: true or an allow expression", where))
		default:
			if err := rt.compile(env, *spec.Allow); err != nil {
				errs = append(errs, fmt.Errorf("%s: allow: %w", where, err))
			}
			rs.usesClaims = rs.usesClaims || rt.usesClaims
			rs.usesGroups = rs.usesGroups || rt.usesGroups
		}
		rs.routes = append(rs.routes, rt)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rs, nil
}

func validRouteName(n string) bool {
	if n == "" || len(n) > maxRouteNameLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// compile parses and type-checks src and plans its evaluation once.
func (rt *Route) compile(env *cel.Env, src string) error {
	if strings.TrimSpace(src) == "" {
		return errors.New("empty expression")
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			// CEL's columns are 0-based; editors count from 1.
			errs = append(errs, fmt.Errorf("line %d, column %d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return errors.Join(errs...)
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return fmt.Errorf("line 1, column 1: result is %s, want bool", checked.OutputType())
	}
	// No runtime cost limit: its tracker costs eight allocations per
	// evaluation, and what an expression iterates over is bounded already
	// (claims by the session cookie or token, headers by the 64 KiB header
	// limit).
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	rt.expr, rt.prg = src, prg
	rt.usesClaims, rt.usesGroups, rt.usesHeaders = references(checked.NativeRep())
	return nil
}

// references reports whether the checked expression reads the claims and
// groups variables, and whether it may read request.headers: any use of request
// other than selecting method, path or host counts, so that passing
// request whole to a macro or comparison still sees the headers.
func references(a *ast.AST) (claims, groups, headers bool) {
	for _, ref := range a.ReferenceMap() {
		switch ref.Name {
		case "claims":
			claims = true
		case "groups":
			groups = true
		}
	}
	requestIDs := map[int64]bool{}
	plainSelect := map[int64]bool{}
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if e.AsIdent() == "request" {
				requestIDs[e.ID()] = true
			}
		case ast.SelectKind:
			switch e.AsSelect().FieldName() {
			case "method", "path", "host":
				plainSelect[e.AsSelect().Operand().ID()] = true
			}
		}
	}))
	for id := range requestIDs {
		if !plainSelect[id] {
			headers = true
		}
	}
	return claims, groups, headers
}

// Len returns the number of routes; 0 for a nil *Routes.
func (rs *Routes) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.routes)
}

// Labels returns every route's Label in order, for metrics.
func (rs *Routes) Labels() []string {
	if rs == nil {
		return nil
	}
	out := make([]string, len(rs.routes))
	for i := range rs.routes {
		out[i] = rs.routes[i].Label
	}
	return out
}

// UsesGroups reports whether any route's expression reads groups, in which
// case the groups claim must be fetched from userinfo when the ID token
// lacks it.
func (rs *Routes) UsesGroups() bool { return rs != nil && rs.usesGroups }

// UsesClaims reports whether any route's expression reads claims, in which
// case sessions must keep the user's claims.
func (rs *Routes) UsesClaims() bool { return rs != nil && rs.usesClaims }

// Match returns the first route whose pattern matches a request with this
// method and path, or nil when none does (the request is then denied).
// normalizedPath must be the output of NormalizePath; any other path
// matches nothing, so a caller that forgets to normalise fails closed.
// skipPublic passes over public routes: forward-auth uses it for a path
// that normalisation changed, which the front proxy forwards as sent and so
// may not be public.
//
// The semantics of one pattern are ServeMux's, as for public paths: a
// method of GET also matches HEAD; a path ending in "/" matches itself and
// everything below it, any other path only itself; segments are compared
// after percent-decoding.
func (rs *Routes) Match(method, normalizedPath string, skipPublic bool) *Route {
	if rs == nil || !validMethod(method) {
		return nil
	}
	if canon, err := NormalizePath(normalizedPath); err != nil || canon != normalizedPath {
		return nil
	}
	return rs.match(method, normalizedPath, skipPublic)
}

// Lookup returns the routes that decide a request: route, the one Match
// returns, and also, a second route that must agree. also is set when the
// path holds a ";parameter" (or "%3B") in a segment and the path with every parameter
// cut off ("/admin;x/y" is "/admin/y" to Tomcat and Spring, which strip
// them before routing) matches another route. Then the request is public
// only when both routes are public, and allowed only when every non-public
// one allows it; when either path matches no route, route is nil and the
// request is refused. NormalizePath keeps such a ";" literally, so without
// this an upstream that strips parameters could serve "/admin/y" under
// the rule of "/".
func (rs *Routes) Lookup(method, normalizedPath string, skipPublic bool) (route, also *Route) {
	route = rs.Match(method, normalizedPath, skipPublic)
	if route == nil || strings.IndexByte(normalizedPath, ';') < 0 && !strings.Contains(normalizedPath, "%3B") {
		return route, nil
	}
	// An encoded ";" counts too: a framework that decodes the path before
	// cutting parameters reads "/admin%3Bx/" as "/admin/".
	also = rs.match(method, stripParams(strings.ReplaceAll(normalizedPath, "%3B", ";")), skipPublic)
	switch {
	case also == nil:
		return nil, nil
	case also == route:
		return route, nil
	}
	return route, also
}

// stripParams cuts the ";parameter" off every segment of a canonical path.
// NormalizePath refuses segments that are empty or dots once cut, so the
// result is a path of the same segments.
func stripParams(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i:], ';')
		if j < 0 {
			b.WriteString(p[i:])
			break
		}
		b.WriteString(p[i : i+j])
		k := strings.IndexByte(p[i+j:], '/')
		if k < 0 {
			break
		}
		i += j + k
	}
	return b.String()
}

// match is Match for a path known to be canonical (or derived from one by
// stripParams).
func (rs *Routes) match(method, normalizedPath string, skipPublic bool) *Route {
	decoded := normalizedPath
	if strings.IndexByte(decoded, '%') >= 0 {
		var err error
		if decoded, err = url.PathUnescape(normalizedPath); err != nil {
			return nil
		}
	}
	for i := range rs.routes {
		rt := &rs.routes[i]
		if skipPublic && rt.public {
			continue
		}
		if rt.matches(method, decoded) {
			return rt
		}
	}
	return nil
}

func (rt *Route) matches(method, decodedPath string) bool {
	if rt.path == "" {
		return false
	}
	if rt.method != "" && rt.method != method && !(rt.method == http.MethodGet && method == http.MethodHead) {
		return false
	}
	if rt.subtree {
		return strings.HasPrefix(decodedPath, rt.path)
	}
	return decodedPath == rt.path
}

// Public reports whether the route needs no login.
func (rt *Route) Public() bool { return rt != nil && rt.public }

// Allow evaluates the route's expression for in. A runtime error (an
// unbound variable such as email for a token without one, a missing map
// key, a failed conversion) denies and is returned for the log; it never holds
// a claim's value. A public or nil route returns false: the caller must
// not ask.
func (rt *Route) Allow(in *Input) (bool, error) {
	if rt == nil || rt.prg == nil {
		return false, errors.New("route has no allow expression")
	}
	act := activationPool.Get().(*activation)
	act.in, act.rt = *in, rt
	out, _, err := rt.prg.Eval(act)
	act.reset()
	activationPool.Put(act)
	if err != nil {
		return false, fmt.Errorf("evaluate route %s: %w", rt.Label, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate route %s: result is %s, not bool", rt.Label, out.Type())
	}
	return bool(b), nil
}

// activation resolves the variables of one evaluation from an Input,
// building each only when the expression asks for it. An attribute the
// user lacks is not bound at all, so using it is an error (which denies)
// rather than a match against "" or an empty list.
type activation struct {
	in  Input
	rt  *Route
	req Request
}

var activationPool = sync.Pool{New: func() any { return &activation{} }}

func (a *activation) reset() { *a = activation{} }

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	in := &a.in
	switch name {
	case "sub":
		if in.Subject == "" {
			return nil, false
		}
		return types.String(in.Subject), true
	case "email":
		if in.Email == "" || in.EmailVerified != nil && !*in.EmailVerified {
			return nil, false
		}
		return types.String(in.Email), true
	case "groups":
		if !in.GroupsKnown {
			return nil, false
		}
		return in.Groups, true
	case "claims":
		return parseClaims(in.Claims), true
	case "request":
		a.req = Request{Method: in.Method, Path: in.Path, Host: in.Host}
		if a.rt.usesHeaders {
			a.req.Headers = visibleHeaders(in.Header, in.HeaderVisible)
		}
		return &a.req, true
	}
	return nil, false
}

// parseClaims decodes a JSON object of claims. Anything that is not an
// object gives an empty map: every has() is then false and every lookup an
// error, which denies. Decoded claims are cached by their JSON text: a
// browser's session sends the same claims on every request, and decoding
// them costs a hundred allocations. Evaluation only reads the maps, so one
// may serve concurrent requests.
func parseClaims(raw string) map[string]any {
	if raw == "" {
		return emptyClaims
	}
	claimsCache.mu.RLock()
	m, ok := claimsCache.m[raw]
	claimsCache.mu.RUnlock()
	if ok {
		return m
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m == nil {
		m = emptyClaims
	}
	claimsCache.mu.Lock()
	if len(claimsCache.m) >= maxCachedClaims {
		clear(claimsCache.m) // crude but bounded; a miss only costs a decode
	}
	claimsCache.m[strings.Clone(raw)] = m
	claimsCache.mu.Unlock()
	return m
}

// emptyClaims is the claims of a session or token without any; never
// modified.
var emptyClaims = map[string]any{}

// maxCachedClaims bounds claimsCache: at most this many distinct users'
// claims (a few hundred bytes to a few KiB each) are kept decoded.
const maxCachedClaims = 1024

var claimsCache = struct {
	mu sync.RWMutex
	m  map[string]map[string]any
}{m: map[string]map[string]any{}}

// visibleHeaders returns the headers for which visible is true, with
// lower-case names (HTTP field names are case-insensitive, RFC 9110
// section 5.1) and several values joined with ", " (section 5.3).
func visibleHeaders(h http.Header, visible func(http.Header, string) bool) map[string]string {
	out := make(map[string]string, len(h))
	if visible == nil {
		return out
	}
	for k, v := range h {
		if len(v) == 0 || !visible(h, k) {
			continue
		}
		out[lowerName(k)] = strings.Join(v, ", ")
	}
	return out
}

// lowerName returns k in lower case, from a bounded cache so that the
// usual header names cost no allocation per request.
func lowerName(k string) string {
	lowerNames.mu.RLock()
	l, ok := lowerNames.m[k]
	lowerNames.mu.RUnlock()
	if ok {
		return l
	}
	l = strings.ToLower(k)
	lowerNames.mu.Lock()
	if len(lowerNames.m) < maxLowerNames { // names are the client's: never grow without bound
		lowerNames.m[strings.Clone(k)] = l
	}
	lowerNames.mu.Unlock()
	return l
}

const maxLowerNames = 512

var lowerNames = struct {
	mu sync.RWMutex
	m  map[string]string
}{m: map[string]string{}}
