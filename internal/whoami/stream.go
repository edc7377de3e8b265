package whoami

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

const (
	// maxMessage bounds one WebSocket message; a larger one ends the
	// connection.
	maxMessage = 1 << 20
	// wsIdle ends a WebSocket connection that has been silent this long;
	// server timeouts no longer apply once the connection is hijacked.
	wsIdle = 5 * time.Minute

	defaultEvents   = 5
	maxEvents       = 1000
	defaultInterval = 500 * time.Millisecond
	maxInterval     = time.Minute
)

// serveWebSocket echoes every message back with its frame type. Any Origin
// is accepted, and so is none: the echo holds nothing worth a cross-site
// WebSocket hijack.
func (h *handler) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !hasToken(r.Header.Values("Upgrade"), "websocket") {
		// RFC 9110, section 15.5.22: 426 names the protocol to switch to.
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "This endpoint speaks WebSocket (RFC 6455).", http.StatusUpgradeRequired)
		return
	}
	if _, ok := w.(http.Hijacker); !ok {
		// x/net/websocket panics when it cannot hijack (HTTP/2).
		http.Error(w, "WebSocket needs an HTTP/1.1 connection.", http.StatusBadRequest)
		return
	}
	websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler:   h.echo,
	}.ServeHTTP(w, r)
}

func (h *handler) echo(ws *websocket.Conn) {
	defer ws.Close()
	ws.MaxPayloadBytes = maxMessage
	h.log.Debug("whoami: websocket open", slog.String(attrRemote, ws.Request().RemoteAddr))
	for {
		if err := ws.SetReadDeadline(time.Now().Add(wsIdle)); err != nil {
			return
		}
		var m frame
		if err := echoCodec.Receive(ws, &m); err != nil {
			h.log.Debug("whoami: websocket closed", slog.String(attrRemote, ws.Request().RemoteAddr), slog.String(attrError, err.Error()))
			return
		}
		if err := echoCodec.Send(ws, m); err != nil {
			return
		}
	}
}

// frame is one WebSocket message and its opcode (text or binary).
type frame struct {
	data []byte
	typ  byte
}

var echoCodec = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		f := v.(frame)
		return f.data, f.typ, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		f := v.(*frame)
		f.data, f.typ = data, typ
		return nil
	},
}

// hasToken reports whether a comma-separated header holds token,
// case-insensitively (RFC 9110, section 5.6.1).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveEvents streams server-sent events numbered 1..n: the first at once,
// each next one interval later, then ends. A reconnecting EventSource sends
// Last-Event-ID and gets the rest; once all were sent it gets 204, which
// tells it to stop reconnecting (HTML Living Standard, section 9.2).
func (h *handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	n, interval, err := eventParams(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	first := 1
	if last, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil && last >= 0 {
		first = last + 1
	}
	if first > n {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // for a buffering proxy in front
	rc := http.NewResponseController(w)
	for i := first; i <= n; i++ {
		if i > first {
			select {
			case <-r.Context().Done():
				return
			case <-h.after(interval):
			}
		}
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %d\n\n", i, i); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func eventParams(q url.Values) (n int, interval time.Duration, err error) {
	n, interval = defaultEvents, defaultInterval
	if s := q.Get("n"); s != "" {
		n, err = strconv.Atoi(s)
		if err != nil || n < 1 || n > maxEvents {
			return 0, 0, fmt.Errorf("n must be a whole number from 1 to %d", maxEvents)
		}
	}
	if s := q.Get("interval"); s != "" {
		interval, err = time.ParseDuration(s)
		if err != nil || interval < 0 || interval > maxInterval {
			return 0, 0, errors.New("interval must be a duration such as 100ms, at most 1m")
		}
	}
	return n, interval, nil
}

// Log attribute keys.
const (
	attrRemote = "remote_addr"
	attrError  = "error"
)
