package api

import (
	"context"
	"net/http"
	"time"
)

// middleware is one concern wrapped around a handler. Each lives in a file of its own
// (mw_*.go); Server.requestChain and Server.routeChain compose them, in the order they run.
type middleware func(http.Handler) http.Handler

// mw makes a middleware of a function that serves a request and may pass it on to next.
func mw(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(w, r, next) })
	}
}

// pass is the middleware that does nothing (a concern a route does not have).
func pass(next http.Handler) http.Handler { return next }

// chain wraps h in mws: the first runs first (outermost).
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// exchange is what the middleware learn about one request on its way: when it started, the
// route it matched and the answer it got. The access log and the metrics read it.
type exchange struct {
	start   time.Time
	route   string // the matched pattern; "unmatched" until one is
	status  int
	bytes   int64
	errCode string
	caller  *Principal // the key's principal, once authenticated
}

type exchangeKey struct{}

// exchangeOf returns the request's exchange (a throwaway one outside the Server's chain).
func exchangeOf(ctx context.Context) *exchange {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		return x
	}
	return &exchange{}
}

// record starts the request's exchange and records its answer into it.
func (s *Server) record(w http.ResponseWriter, r *http.Request, next http.Handler) {
	x := &exchange{start: s.now(), route: "unmatched"}
	next.ServeHTTP(&recorder{ResponseWriter: w, x: x}, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// recorder writes the status, the size and the error code of a response into its exchange.
type recorder struct {
	http.ResponseWriter
	x *exchange
}

func (rw *recorder) WriteHeader(code int) {
	if rw.x.status == 0 {
		rw.x.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.x.status == 0 {
		rw.x.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.x.bytes += int64(n)
	return n, err
}

// RecordErrorCode implements wire.CodeRecorder.
func (rw *recorder) RecordErrorCode(c string) { rw.x.errCode = c }

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
