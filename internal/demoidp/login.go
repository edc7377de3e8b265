package demoidp

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	pathLogin     = "/login"
	pathLoggedOut = "/logged-out"
	// cookieName is the IdP's login session cookie. Cookies do not keep
	// ports apart (RFC 6265, section 8.5), so on 127.0.0.1 it shares a jar
	// with authgate's: the name must not collide.
	cookieName = "demoidp_session"
	paramID    = "authRequestID"
)

func loginURL(authRequestID string) string {
	return pathLogin + "?" + paramID + "=" + url.QueryEscape(authRequestID)
}

// serveLogin is where the op package sends the browser after /authorize. A
// live login session signs the request in without a page, as a real IdP
// does, unless max_age or prompt=login asks for a fresh sign-in.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	ar, ok := p.authRequest(r, r.URL.Query().Get(paramID))
	if !ok {
		p.renderUnknownRequest(w)
		return
	}
	if sess, ok := p.currentSession(r); ok && !ar.needsLogin(sess.authTime, p.store.now()) {
		p.log.DebugContext(r.Context(), "demoidp: signed in by session", slog.String(attrClientID, ar.clientID))
		p.finish(w, r, ar, sess)
		return
	}
	if ar.promptNone() {
		// OpenID Connect Core 1.0, section 3.1.2.6: login_required goes back
		// to the client's redirect_uri.
		_ = p.store.DeleteAuthRequest(r.Context(), ar.id)
		op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired(), p.op)
		return
	}
	p.renderLogin(w, ar.id, ar.loginHint, "")
}

// serveLoginSubmit checks the username and password, starts a login session
// (replacing any earlier one in this browser) and completes the request.
func (p *Provider) serveLoginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad form.", http.StatusBadRequest)
		return
	}
	ar, ok := p.authRequest(r, r.PostForm.Get(paramID))
	if !ok {
		p.renderUnknownRequest(w)
		return
	}
	username := r.PostForm.Get("username")
	u, ok := p.store.checkPassword(username, r.PostForm.Get("password"))
	if !ok {
		p.log.DebugContext(r.Context(), "demoidp: sign-in failed", slog.String(attrUser, username))
		p.renderLogin(w, ar.id, username, "Unknown user or wrong password.")
		return
	}
	if old, ok := p.currentSession(r); ok {
		p.store.endSessions(r.Context(), old.id)
	}
	cookie, sess := p.store.newSession(u.ID)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: cookie, Path: "/",
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	p.log.InfoContext(r.Context(), "demoidp: signed in", slog.String(attrUser, u.Username), slog.String(attrClientID, ar.clientID))
	p.finish(w, r, ar, sess)
}

// finish marks the auth request signed in and hands back to the op
// package's callback, which issues the code.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, ar *authRequest, sess loginSession) {
	if err := p.store.completeAuthRequest(ar.id, sess); err != nil {
		p.renderUnknownRequest(w)
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), ar.id), http.StatusSeeOther)
}

func (p *Provider) authRequest(r *http.Request, id string) (*authRequest, bool) {
	ar, err := p.store.AuthRequestByID(r.Context(), id)
	if err != nil {
		return nil, false
	}
	return ar.(*authRequest), true
}

func (p *Provider) currentSession(r *http.Request) (loginSession, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return loginSession{}, false
	}
	return p.store.session(c.Value)
}

// endSession wraps the op package's end_session endpoint: it hands the
// session cookie to storage.TerminateSessionFromRequest through the context
// and, when the sign-out succeeded (the op package then redirects with 302),
// deletes the cookie.
func (p *Provider) endSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if c, err := r.Cookie(cookieName); err == nil {
			ctx = context.WithValue(ctx, sessionCookieKey{}, c.Value)
		}
		gone := &http.Cookie{Name: cookieName, Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode}
		next.ServeHTTP(&clearOnRedirect{ResponseWriter: w, cookie: gone}, r.WithContext(ctx))
	})
}

type clearOnRedirect struct {
	http.ResponseWriter
	cookie *http.Cookie
}

func (w *clearOnRedirect) WriteHeader(code int) {
	if code == http.StatusFound {
		http.SetCookie(w.ResponseWriter, w.cookie)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *clearOnRedirect) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *Provider) serveLoggedOut(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, "message", message{Title: "Signed out", Text: "You are signed out of the demo identity provider."})
}

func (p *Provider) renderUnknownRequest(w http.ResponseWriter) {
	render(w, http.StatusBadRequest, "message", message{
		Title: "Sign-in request expired",
		Text:  "This sign-in request is unknown, already used or expired. Go back to the application and sign in again.",
	})
}

func (p *Provider) renderLogin(w http.ResponseWriter, id, username, errText string) {
	render(w, http.StatusOK, "login", loginPage{ID: id, Username: username, Error: errText, Users: p.store.userList})
}

type loginPage struct {
	ID       string
	Username string
	Error    string
	Users    []User
}

type message struct{ Title, Text string }

func render(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No form-action: browsers apply it to the redirects after the POST,
	// which go to the relying party's origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · demo identity provider</title>
<style>
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f1f3f7;
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433}
main{background:#fff;width:100%;max-width:26rem;margin:1.5rem;padding:2rem;border-radius:12px;box-shadow:0 4px 24px rgba(20,30,60,.12)}
h1{font-size:1.3rem;margin:0 0 .25rem}
.sub{color:#5b6478;margin:0 0 1.5rem;font-size:.9rem}
label{display:block;font-weight:600;font-size:.85rem;margin:.9rem 0 .3rem}
input{width:100%;padding:.6rem .7rem;border:1px solid #c7cdd9;border-radius:8px;font:inherit}
input:focus{outline:2px solid #3d6ef5;border-color:transparent}
button{width:100%;margin-top:1.4rem;padding:.7rem;border:0;border-radius:8px;background:#3d6ef5;color:#fff;font:inherit;font-weight:600;cursor:pointer}
button:hover{background:#2c59d6}
.error{background:#fdecec;color:#a31d1d;border:1px solid #f3c2c2;border-radius:8px;padding:.6rem .8rem;margin:0 0 .5rem}
.hint{margin-top:1.8rem;padding-top:1rem;border-top:1px solid #e4e7ee;font-size:.85rem;color:#5b6478}
table{width:100%;border-collapse:collapse;margin-top:.5rem}
th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eef0f4}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;color:#1d2433}
</style></head><body><main>{{end}}

{{define "login"}}{{template "head" "Sign in"}}
<h1>Sign in</h1>
<p class="sub">authgate demo identity provider</p>
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" autocomplete="username" required{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}>
<button type="submit">Sign in</button>
</form>
<div class="hint">
<p>Nothing here is real: sign in as any of these demo users.</p>
<table><thead><tr><th>Username</th><th>Password</th><th>Groups</th></tr></thead><tbody>
{{range .Users}}<tr><td><code>{{.Username}}</code></td><td><code>{{.Password}}</code></td><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}—{{end}}</td></tr>
{{end}}</tbody></table>
</div>
</main></body></html>{{end}}

{{define "message"}}{{template "head" .Title}}
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
</main></body></html>{{end}}
`))
