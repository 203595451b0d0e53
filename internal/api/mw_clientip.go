package api

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
)

type clientIPKey struct{}

// clientIP decides the client's address once (X-Forwarded-For only from a trusted proxy),
// for the create limit and the access log.
func (s *Server) clientIP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ip := clientip.Of(r, s.opts.TrustedProxies)
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
}

// ClientIP returns the client address the Server decided on for ctx's request.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip
}
