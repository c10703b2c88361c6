package bridge

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// TokenCookie is the cookie that carries the token once a browser has opened the dashboard's URL.
const TokenCookie = "skiff_token"

// Protect wraps the handler of a TCP listener on addr (its actual address, port resolved): the one
// gate in front of the dashboard and the bridge, whether they are served by this process or
// forwarded to the engine's socket. Every request must
//   - name this server in its Host header: localhost or an IP literal of the listener (any IP literal
//     when it listens on all interfaces), with its port; a name that resolves here by DNS rebinding
//     gets 421;
//   - come from the dashboard's own origin when it carries an Origin header (browsers send one with
//     WebSocket upgrades, non-GET requests and scripted requests): "http://" + Host, else 403, before
//     any upgrade; requests without one (the CLI, the Go client) pass;
//   - carry token: ?token=, "Authorization: Bearer", or the TokenCookie cookie, else 401.
//
// A GET or HEAD that is not a WebSocket upgrade and carries ?token= is answered with the cookie
// (HttpOnly, SameSite=Strict) and a 303 to the same URL without the token, so that the token does
// not stay in the address bar or the history.
func Protect(addr net.Addr, token string, next http.Handler) http.Handler {
	ta, _ := addr.(*net.TCPAddr)
	valid := func(got string) bool { return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(ta, r.Host) {
			http.Error(w, "this server does not answer to the host "+quoteHeader(r.Host)+": open the URL that `skiff serve` printed", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "http://"+r.Host) {
			http.Error(w, "cross-origin request from "+quoteHeader(o)+" refused", http.StatusForbidden)
			return
		}
		fromURL := r.URL.Query().Get("token")
		got := fromURL
		if got == "" {
			got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if got == "" {
			if c, err := r.Cookie(TokenCookie); err == nil {
				got = c.Value
			}
		}
		if !valid(got) {
			http.Error(w, "missing or wrong token: open the URL that `skiff serve` printed", http.StatusUnauthorized)
			return
		}
		if fromURL != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isUpgrade(r) {
			http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Location", withoutToken(r))
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether host (a Host header) names the listener at ta: its port, and
// localhost or an IP literal (names other than localhost could be rebound to this address).
func hostAllowed(ta *net.TCPAddr, host string) bool {
	if ta == nil {
		return false
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, "80"
	}
	if port != strconv.Itoa(ta.Port) {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	return ip.Equal(ta.IP) || ta.IP.IsUnspecified() || (ta.IP.IsLoopback() && ip.IsLoopback())
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// withoutToken is r's path and query without the token, as a path on this server.
func withoutToken(r *http.Request) string {
	q := r.URL.Query()
	q.Del("token")
	loc := "/" + strings.TrimLeft(r.URL.EscapedPath(), "/") // never "//host": a path on this server
	if len(q) > 0 {
		loc += "?" + q.Encode()
	}
	return loc
}

// quoteHeader quotes a header value for an error message, cut short.
func quoteHeader(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}
