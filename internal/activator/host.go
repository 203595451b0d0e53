package activator

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
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
	if fwd := r.Header.Values("X-Forwarded-Host"); len(fwd) > 0 && clientip.Trusted(clientip.Peer(r), trusted) {
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
