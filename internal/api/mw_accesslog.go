package api

import (
	"log/slog"
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// accessLog writes one line per request once it is answered.
func (s *Server) accessLog(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(w, r) // after a panic that passes recoverPanic (ErrAbortHandler) nothing is recorded
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return // the line would be dropped: build none of it
	}
	x := exchangeOf(ctx)
	d := s.now().Sub(x.start)
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("route", x.route), slog.String("path", r.URL.Path),
		slog.Int("status", statusOf(x)), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int64("bytes", x.bytes), slog.String("request_id", wire.RequestID(ctx)), slog.String("client_ip", ClientIP(ctx).String()),
	}
	if x.caller != nil { // the key's name and role, never the key
		attrs = append(attrs, slog.String("key_name", x.caller.Name), slog.String("role", string(x.caller.Role)))
	}
	if x.errCode != "" {
		attrs = append(attrs, slog.String("error_code", x.errCode))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// statusOf is the status the exchange was answered with (200 when nothing was written).
func statusOf(x *exchange) int {
	if x.status == 0 {
		return http.StatusOK
	}
	return x.status
}
