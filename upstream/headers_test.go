package upstream

import (
	"net/http"
	"testing"
)

func TestHeaderReaches(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive, X-Secret", " x_other ", "X-Third"}}
	for name, want := range map[string]bool{
		"X-Team": true, "Accept": true, "X-Request-Id": true, "User-Agent": true,
		"Authorization": false, "Forwarded": false, "X-Real-Ip": false, "X-Forwarded-User": false,
		"X_Forwarded_Email": false, "X-Auth-Request-User": false, "Cookie": false,
		"Connection": false, "Keep-Alive": false, "Te": false, "Upgrade": false, "Proxy-Authorization": false,
		"Transfer-Encoding": false, "Trailer": false, "X-Secret": false, "X-Other": false, "X_Other": false, "x-third": false,
	} {
		if got := HeaderReaches(h, name); got != want {
			t.Errorf("HeaderReaches(%q) = %v, want %v", name, got, want)
		}
	}
}
