package devingress

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// origins rewrites the origins the control plane names for a workspace host
// (https://<host>, or http://<host> without a port) to the one the browser uses
// (http://<host>:<port> here): nginx's proxy_redirect and sub_filter, for the local case where
// the two differ. When they are the same nothing changes.
type origins struct {
	from []string
	to   string
}

func originRewrite(host, to string) origins {
	o := origins{to: to}
	for _, f := range []string{"https://" + host, "http://" + host} {
		if f != to {
			o.from = append(o.from, f)
		}
	}
	return o
}

// apply replaces every whole occurrence of a from origin in s: one not followed by a
// character that would continue its host or give it a port.
func (o origins) apply(s []byte) []byte {
	for _, from := range o.from {
		var out []byte
		rest := s
		for {
			i := bytes.Index(rest, []byte(from))
			if i < 0 {
				break
			}
			end := i + len(from)
			if out == nil {
				out = make([]byte, 0, len(s)+16)
			}
			if end < len(rest) && continuesHost(rest[end]) {
				out = append(out, rest[:end]...)
			} else {
				out = append(append(out, rest[:i]...), o.to...)
			}
			rest = rest[end:]
		}
		if out != nil {
			s = append(out, rest...)
		}
	}
	return s
}

func continuesHost(c byte) bool {
	return c == '.' || c == '-' || c == ':' || c == '_' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// buffer holds the control plane's answer so that it can be fitted to the browser's origin
// before it is sent (the activator's answers are small pages).
type buffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBuffer() *buffer { return &buffer{header: http.Header{}} }

func (b *buffer) Header() http.Header { return b.header }

func (b *buffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *buffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// flushTo sends the answer: Location and textual bodies rewritten by o, and, over plain
// HTTP, cookies without Secure (which a browser refuses over http, outside localhost), but
// for __Host- and __Secure- cookies, which a browser refuses without Secure and which the
// workspaces' *.localhost hosts may set over http.
func (b *buffer) flushTo(w http.ResponseWriter, r *http.Request, o origins, plain bool) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if loc := h.Get("Location"); loc != "" {
		h.Set("Location", string(o.apply([]byte(loc))))
	}
	if plain {
		cookies := h.Values("Set-Cookie")
		h.Del("Set-Cookie")
		for _, c := range cookies {
			h.Add("Set-Cookie", withoutSecure(c))
		}
	}
	body := b.body.Bytes()
	if textual(h.Get("Content-Type")) {
		body = o.apply(body)
		if h.Get("Content-Length") != "" {
			h.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func textual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (strings.HasPrefix(mt, "text/") || mt == "application/json")
}

func withoutSecure(cookie string) string {
	if name := strings.TrimSpace(cookie); strings.HasPrefix(name, "__Host-") || strings.HasPrefix(name, "__Secure-") {
		return cookie
	}
	parts := strings.Split(cookie, ";")
	keep := parts[:0]
	for _, p := range parts {
		if !strings.EqualFold(strings.TrimSpace(p), "Secure") {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ";")
}
