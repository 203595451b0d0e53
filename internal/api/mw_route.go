package api

import (
	"net/http"
	"path"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// checkPath refuses a path that is not canonical ("..", ".", "//"), which ServeMux would
// answer with a redirect: under /session/ and /backups/ it is a malformed id, elsewhere no
// route.
func (s *Server) checkPath(w http.ResponseWriter, r *http.Request, next http.Handler) {
	p := r.URL.EscapedPath()
	if p != "" && p == cleanPath(p) && r.Method != http.MethodConnect {
		next.ServeHTTP(w, r)
		return
	}
	var err error = &wire.Error{Code: wire.CodeRouteNotFound, Message: "no such route"}
	switch {
	case strings.HasPrefix(r.URL.Path, "/session/"):
		err = session.Invalid("uuid", "session id must be %d characters of [a-z0-9] starting with a letter", session.IDLength)
	case strings.HasPrefix(r.URL.Path, "/backups/"):
		err = session.Invalid("backup_id", "a backup id is \"<session id>-<UTC time>\", such as \"ab12cd34-20261126T020304Z\"")
	}
	wire.WriteError(w, r, s.log, err)
}

// cleanPath is net/http's: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// dispatch finds the route (a 404 or 405 in the API's shape, before any key is asked for),
// names it for the log and the metrics, and serves it.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, p := s.mux.Handler(r)
	if p == "" {
		wire.WriteError(w, r, s.log, unmatched(h, r))
		return
	}
	exchangeOf(r.Context()).route = p
	s.mux.ServeHTTP(w, r)
}

// unmatched turns ServeMux's plain-text 404/405 into the API's errors (keeping Allow).
func unmatched(h http.Handler, r *http.Request) error {
	c := &capture{header: http.Header{}}
	h.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		allow := c.header.Get("Allow")
		return &wire.Error{Code: wire.CodeMethodNotAllowed, Allow: allow,
			Message: "method " + r.Method + " is not allowed here; allowed: " + allow}
	}
	return &wire.Error{Code: wire.CodeRouteNotFound, Message: "no such route: " + r.Method + " " + r.URL.Path}
}

// capture records what a ServeMux fallback handler would answer.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
