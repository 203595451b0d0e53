package activator

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// hostPrefix starts every workspace host: vs-code-<id>.<domain>.
const hostPrefix = "vs-code-"

// sessionID returns the session id that host names under domain ("vs-code-<id>.<domain>",
// any port ignored), or false. Only a valid id (session.ValidID) is returned.
func sessionID(host, domain string) (string, bool) {
	host = strings.ToLower(strings.TrimSpace(host))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	label, rest, ok := strings.Cut(host, ".")
	if !ok || rest != strings.ToLower(domain) {
		return "", false
	}
	id, ok := strings.CutPrefix(label, hostPrefix)
	if !ok || !session.ValidID(id) {
		return "", false
	}
	return id, true
}

// workspaceHost is the host the request was made for: X-Forwarded-Host (its last value, the
// one the nearest proxy set) when the direct peer is a trusted proxy, such as ingress-nginx
// behind Cloud Run's front end, whose Host is the activator's own; Host otherwise.
func workspaceHost(r *http.Request, trusted []netip.Prefix) string {
	if fwd := r.Header.Values("X-Forwarded-Host"); len(fwd) > 0 && isTrusted(peerAddr(r.RemoteAddr), trusted) {
		last := fwd[len(fwd)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if last = strings.TrimSpace(last); last != "" {
			return last
		}
	}
	return r.Host
}

// clientIP is the client's address: the direct peer, or, when the peer is a trusted proxy,
// the first address from the right of X-Forwarded-For that is not a trusted proxy (the rule
// internal/api follows, so one HYPERBOLA_TRUSTED_PROXIES serves both).
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		ip = a.Unmap()
		if !isTrusted(ip, trusted) {
			return ip
		}
	}
	return ip
}

func peerAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Dispatch serves one listener for both: requests for a workspace host (vs-code-<id>.<domain>
// in Host, or in X-Forwarded-Host from a trusted proxy) go to the activator, everything else
// to api. A nil activator sends everything to api.
func Dispatch(api http.Handler, act *Handler) http.Handler {
	if act == nil {
		return api
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if act.Serves(r) {
			act.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
