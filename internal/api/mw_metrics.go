package api

import "net/http"

// measure counts every request and its latency by route pattern and status.
func (s *Server) measure(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(w, r) // after a panic that passes recoverPanic (ErrAbortHandler) nothing is recorded
	x := exchangeOf(r.Context())
	s.metrics.observeRequest(x.route, statusOf(x), s.now().Sub(x.start))
}
