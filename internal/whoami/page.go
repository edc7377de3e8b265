package whoami

import (
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"time"
)

type pageData struct {
	report
	Reload     string
	HeaderRows [][2]string
	ClaimRows  []claimRow
	Alg, Kid   string
	Exp        int64 // unix seconds; 0 when the token has no exp
}

type claimRow struct{ Name, Value, Note string }

// timeClaims are NumericDate claims (RFC 7519, section 2), shown as times.
var timeClaims = map[string]bool{"exp": true, "iat": true, "nbf": true, "auth_time": true}

func newPageData(r *http.Request, rep report) pageData {
	d := pageData{report: rep, Reload: r.URL.RequestURI(), HeaderRows: sortedHeaders(rep.Headers)}
	if rep.Token == nil {
		return d
	}
	d.Alg, _ = rep.Token.Header["alg"].(string)
	d.Kid, _ = rep.Token.Header["kid"].(string)
	if rep.Token.ExpiresAt != nil {
		d.Exp = rep.Token.ExpiresAt.Unix()
	}
	for _, name := range slices.Sorted(maps.Keys(rep.Token.Claims)) {
		row := claimRow{Name: name, Value: display(rep.Token.Claims[name])}
		if n, ok := rep.Token.Claims[name].(json.Number); ok && timeClaims[name] {
			if sec, err := n.Int64(); err == nil {
				row.Note = time.Unix(sec, 0).UTC().Format(time.RFC3339)
			}
		}
		d.ClaimRows = append(d.ClaimRows, row)
	}
	return d
}

func display(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>whoami · authgate demo</title>
<style>
*{box-sizing:border-box}
body{margin:0;background:#f4f5f8;color:#1d2433;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{background:#1d2433;color:#fff;padding:1rem 1.5rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between}
header h1{font-size:1.15rem;margin:0}
nav a{color:#fff;margin-left:1rem;text-decoration:none;border:1px solid rgba(255,255,255,.35);border-radius:6px;padding:.3rem .7rem}
nav a:hover{background:rgba(255,255,255,.12)}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
section{background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(20,30,60,.08);padding:1.2rem 1.4rem;margin-bottom:1.2rem}
h2{font-size:1rem;margin:0 0 .8rem}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #eef0f4}
th{width:14rem;font-weight:600;white-space:nowrap}
td{word-break:break-all}
code,td{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.note{color:#5b6478;font-size:.85rem;margin:.2rem 0 .8rem}
.time{color:#5b6478}
#countdown{font-weight:600}
#countdown.ok{color:#1c7c3a}
#countdown.expired{color:#b42318}
.warn{color:#b42318}
</style></head><body>
<header><h1>whoami: what authgate forwarded</h1>
<nav><a href="{{.Reload}}">Reload</a><a href="/oauth2/userinfo">/oauth2/userinfo</a><a href="/oauth2/sign_out">Sign out</a></nav></header>
<main>
<section><h2>Request</h2><table>
<tr><th>Method</th><td>{{.Method}}</td></tr>
<tr><th>Path</th><td>{{.Path}}</td></tr>
<tr><th>Query</th><td>{{.RawQuery}}</td></tr>
<tr><th>Host</th><td>{{.Host}}</td></tr>
<tr><th>Protocol</th><td>{{.Proto}}</td></tr>
<tr><th>From</th><td>{{.RemoteAddr}}</td></tr>
</table></section>

<section id="token"><h2>Access token claims</h2>
{{if .Token}}<p class="note">Decoded from the <code>Authorization: Bearer</code> header for display only: the signature is not checked here and nothing trusts these claims.{{with .Alg}} Signed with {{.}}{{end}}{{with .Kid}}, key {{.}}{{end}}.</p>
{{if .Exp}}<p>Access token <span id="countdown" data-exp="{{.Exp}}">expires at {{.Token.ExpiresAt.Format "15:04:05 UTC"}}</span></p>{{end}}
<table>{{range .ClaimRows}}<tr><th>{{.Name}}</th><td>{{.Value}}{{with .Note}} <span class="time">({{.}})</span>{{end}}</td></tr>
{{end}}</table>
{{else if .TokenError}}<p class="warn">{{.TokenError}}</p>
{{else}}<p class="note">No <code>Authorization: Bearer</code> header arrived.</p>{{end}}
</section>

<section><h2>Headers</h2>
<p class="note">Credentials are cut short and cookie values left out.</p>
<table>{{range .HeaderRows}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table></section>
</main>
<script>
(function () {
  var el = document.getElementById("countdown");
  if (!el) return;
  var exp = Number(el.dataset.exp);
  function tick() {
    var s = Math.round(exp - Date.now() / 1000);
    el.textContent = s > 0 ? "expires in " + s + " s" : "expired " + (-s) + " s ago";
    el.className = s > 0 ? "ok" : "expired";
  }
  tick();
  setInterval(tick, 1000);
})();
</script>
</body></html>
`))
