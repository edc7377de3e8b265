package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository, relative to this package's directory (where go
// test runs).
const repoRoot = ".."

// configVar is one AUTHGATE_* variable as cmd/authgate/config.go declares it.
type configVar struct {
	Name    string // AUTHGATE_...
	GoType  string // the field's type as written: string, bool, int, time.Duration, []string
	Default string
	Desc    string
	Secret  bool
}

// readConfigVars parses cmd/authgate/config.go and returns every field of
// type Config that has an envconfig tag, in declaration order. It reads the
// source at test time, so artefacts pass as soon as a variable lands there.
func readConfigVars(t *testing.T) []configVar {
	t.Helper()
	path := filepath.Join(repoRoot, "cmd", "authgate", "config.go")
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var vars []configVar
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.TypeSpec)
		if !ok || spec.Name.Name != "Config" {
			return true
		}
		st, ok := spec.Type.(*ast.StructType)
		if !ok {
			t.Fatalf("%s: Config is not a struct", path)
		}
		for _, f := range st.Fields.List {
			if f.Tag == nil {
				continue
			}
			raw, err := strconv.Unquote(f.Tag.Value)
			if err != nil {
				t.Fatalf("%s: tag %s: %v", path, f.Tag.Value, err)
			}
			tag := reflect.StructTag(raw)
			name := tag.Get("envconfig")
			if name == "" {
				continue
			}
			vars = append(vars, configVar{
				Name:    name,
				GoType:  exprString(f.Type),
				Default: tag.Get("default"),
				Desc:    tag.Get("desc"),
				Secret:  tag.Get("secret") == "true",
			})
		}
		return false
	})
	if len(vars) == 0 {
		t.Fatalf("%s: found no envconfig-tagged field in type Config", path)
	}
	return vars
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	default:
		return "?"
	}
}

// configNames returns the set of variable names config.go declares.
func configNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, v := range readConfigVars(t) {
		names[v.Name] = true
	}
	return names
}

// varPattern matches an AUTHGATE_ variable name in any text ("AUTHGATE_*" in
// prose does not match).
var varPattern = regexp.MustCompile(`\bAUTHGATE_[A-Z0-9_]*[A-Z0-9]\b`)

// varsIn returns the AUTHGATE_ names in text, sorted and unique.
func varsIn(text string) []string {
	seen := map[string]bool{}
	for _, m := range varPattern.FindAllString(text, -1) {
		seen[m] = true
	}
	return sortedKeys(seen)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestReadConfigVars(t *testing.T) {
	vars := readConfigVars(t)
	byName := map[string]configVar{}
	for _, v := range vars {
		if !strings.HasPrefix(v.Name, "AUTHGATE_") {
			t.Errorf("envconfig tag %q does not start with AUTHGATE_", v.Name)
		}
		if _, dup := byName[v.Name]; dup {
			t.Errorf("envconfig tag %q appears twice", v.Name)
		}
		byName[v.Name] = v
	}
	// Variables whose meaning the artefacts here rely on: if one is renamed,
	// the artefacts must follow.
	for _, name := range []string{"AUTHGATE_UPSTREAM", "AUTHGATE_OIDC_ISSUER_URL", "AUTHGATE_CLIENT_ID", "AUTHGATE_REDIRECT_URL", "AUTHGATE_COOKIE_SECRET", "AUTHGATE_LISTEN_ADDR", "AUTHGATE_INTERNAL_ADDR"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("config.go has no %s", name)
		}
	}
	if got := byName["AUTHGATE_COOKIE_SECRET"]; !got.Secret {
		t.Errorf("AUTHGATE_COOKIE_SECRET: secret tag = %v, want true", got.Secret)
	}
}
