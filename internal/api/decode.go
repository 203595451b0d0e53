package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// This file turns a request's path, query, headers and body into the session core's input
// types. It decides nothing about the values: a malformed one (not JSON, the wrong type, a
// duration or time that does not parse, a parameter given twice or empty) is a 4xx naming the
// field (the body member, the query parameter, "uuid", the header); the rules on well-formed
// values are the core's, which the Service runs first thing on every call
// (session.CreateRequest.Check, UpdateRequest.Check, ListOptions.Check) and answers with the
// same *session.Error naming the field.

// HeaderIdempotencyKey makes a retried create return the first attempt's session.
const HeaderIdempotencyKey = wire.HeaderIdempotencyKey

// CreateBody is POST /session/create's body: session.CreateRequest as the Go client sends it,
// with the durations kept raw so that a malformed one is refused naming its member.
type CreateBody struct {
	session.CreateRequest
	IdleTimeout      json.RawMessage `json:"idle_timeout,omitempty"`
	IdleConnectedMax json.RawMessage `json:"idle_connected_max,omitempty"`
	TTL              json.RawMessage `json:"ttl,omitempty"`
}

// UpdateBody is PATCH /session/{uuid}'s body, session.UpdateRequest likewise: absent (or
// null) members are left as they are; "labels" replaces every user label ({} removes them all).
type UpdateBody struct {
	session.UpdateRequest
	IdleTimeout      json.RawMessage `json:"idle_timeout,omitempty"`
	IdleConnectedMax json.RawMessage `json:"idle_connected_max,omitempty"`
	TTL              json.RawMessage `json:"ttl,omitempty"`
}

// Each route's whole input, read in one call: the handlers see only session types.

// sessionInput reads a session route's {uuid} and its query (only the allowed parameters).
func sessionInput(r *http.Request, allowed ...string) (string, map[string]string, error) {
	id, err := pathID(r)
	if err != nil {
		return "", nil, err
	}
	q, err := query(r, allowed...)
	return id, q, err
}

// bareInput reads a route on one session that takes no query and no body (or {}).
func (s *Server) bareInput(w http.ResponseWriter, r *http.Request) (string, error) {
	id, _, err := sessionInput(r)
	if err != nil {
		return "", err
	}
	return id, s.noBody(w, r)
}

// createInput reads POST /session/create: no query, a JSON body, an idempotency key.
func (s *Server) createInput(w http.ResponseWriter, r *http.Request) (session.CreateRequest, error) {
	if _, err := query(r); err != nil {
		return session.CreateRequest{}, err
	}
	var body CreateBody
	if err := s.decode(w, r, &body, true); err != nil {
		return session.CreateRequest{}, err
	}
	return createRequest(body, r.Header)
}

// updateInput reads PATCH /session/{uuid}: no query, a JSON body.
func (s *Server) updateInput(w http.ResponseWriter, r *http.Request) (string, session.UpdateRequest, error) {
	var body UpdateBody
	id, _, err := sessionInput(r)
	if err == nil {
		err = s.decode(w, r, &body, true)
	}
	if err != nil {
		return "", session.UpdateRequest{}, err
	}
	req, err := updateRequest(body)
	return id, req, err
}

// deleteInput reads DELETE /session/{uuid}?skip_backup=: no body (or {}).
func (s *Server) deleteInput(w http.ResponseWriter, r *http.Request) (string, session.DeleteOptions, error) {
	var opts session.DeleteOptions
	id, q, err := sessionInput(r, "skip_backup")
	if err == nil {
		opts.SkipBackup, err = queryBool(q, "skip_backup")
	}
	if err == nil {
		err = s.noBody(w, r)
	}
	return id, opts, err
}

// listInput reads GET /sessions?user_id=&status=&limit=&cursor=.
func listInput(r *http.Request) (session.ListOptions, error) {
	q, err := query(r, "user_id", "status", "limit", "cursor")
	if err != nil {
		return session.ListOptions{}, err
	}
	return listOptions(q)
}

// pathID reads the {uuid} path segment as a session id: a segment that is none names no
// session, so the route is answered here (as a 400 naming "uuid") and never reaches the
// Manager, nor the wake link, which is not the core's.
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("uuid")
	if err := session.CheckID(id); err != nil {
		return "", err
	}
	return id, nil
}

// query parses the query string, refusing parameters not in allowed and repeated ones.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	if r.URL.RawQuery == "" {
		return map[string]string{}, nil
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, session.Invalid("query", "the query string is malformed")
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		name := k
		if !ok {
			if len(name) > 64 || !isPrintableASCII(name) {
				name = "query"
			}
			if len(allowed) == 0 {
				return nil, session.Invalid(name, "unknown query parameter %q: this route takes none", name)
			}
			return nil, session.Invalid(name, "unknown query parameter %q (allowed: %s)", name, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, session.Invalid(k, "%s is given %d times", k, len(v))
		}
		if v[0] == "" { // "?user_id=" is a mistake, not "every user"
			return nil, session.Invalid(k, "%s is given empty: leave it out instead", k)
		}
		out[k] = v[0]
	}
	return out, nil
}

// queryBool reads a true/false parameter (false when absent).
func queryBool(q map[string]string, field string) (bool, error) {
	v, ok := q[field]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, session.Invalid(field, "%s must be true or false", field)
	}
	return b, nil
}

// queryTime reads an RFC 3339 time from the query (the zero time when absent). A "+" of an
// offset that was not escaped arrives as a space and is read as the "+" it was.
func queryTime(q map[string]string, field string) (time.Time, error) {
	v, ok := q[field]
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && strings.Count(v, " ") == 1 {
		t, err = time.Parse(time.RFC3339, strings.Replace(v, " ", "+", 1))
	}
	if err != nil {
		return time.Time{}, session.Invalid(field, "%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z (escape a + offset as %%2B)", field)
	}
	return t.UTC(), nil
}

// queryWait reads the status route's wait: a duration such as 20s or 500ms, from 0 to
// session.MaxAwait (0 when absent: answer at once).
func queryWait(q map[string]string) (time.Duration, error) {
	v, ok := q["wait"]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, session.Invalid("wait", "wait must be a duration such as 20s or 500ms, not %q", v)
	case d < 0 || d > session.MaxAwait:
		return 0, session.Invalid("wait", "wait must be from 0s to %s, not %s", session.MaxAwait, v)
	}
	return d, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// listOptions reads GET /sessions' query; the Service checks the values.
func listOptions(q map[string]string) (session.ListOptions, error) {
	opts := session.ListOptions{UserID: q["user_id"], State: session.State(q["status"]), Cursor: q["cursor"]}
	var err error
	opts.Limit, err = queryLimit(q)
	return opts, err
}

// queryLimit reads a listing's page size (0 when absent).
func queryLimit(q map[string]string) (int, error) {
	v, ok := q["limit"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, session.Invalid("limit", "limit must be a whole number, not %q", v)
	}
	// A limit that is given is a page size (the options' 0 means none was asked for): the
	// core's rule on it, since "limit=0" cannot reach the core as asked.
	if err := session.CheckLimit(n); err != nil {
		return 0, err
	}
	return n, nil
}

// usageQuery reads GET /usage's query and runs the report's own check on it (from required,
// to defaulting to now, a window of at most events.MaxUsageWindow): the report reads
// Firestore, or is absent (501), so a query it would refuse is answered here first. A window
// with a to is checked as given (the report's clock is its own, and clamps a to in its future);
// one without is checked as ending at now, and its to left to the report.
func usageQuery(q map[string]string, now time.Time) (events.UsageQuery, error) {
	uq := events.UsageQuery{UserID: q["user_id"]}
	var err error
	if uq.From, err = queryTime(q, "from"); err != nil {
		return uq, err
	}
	if uq.To, err = queryTime(q, "to"); err != nil {
		return uq, err
	}
	if !uq.To.IsZero() {
		now = time.Time{}
	}
	return uq, uq.Check(now)
}

// createRequest reads POST /session/create's body and idempotency key.
func createRequest(b CreateBody, h http.Header) (session.CreateRequest, error) {
	req := b.CreateRequest
	var err error
	if req.IdleTimeout, err = duration(b.IdleTimeout, "idle_timeout"); err != nil {
		return req, err
	}
	if req.IdleConnectedMax, err = duration(b.IdleConnectedMax, "idle_connected_max"); err != nil {
		return req, err
	}
	if req.TTL, err = duration(b.TTL, "ttl"); err != nil {
		return req, err
	}
	req.RequestID, err = idempotencyKey(h, b.RequestID)
	return req, err
}

// idempotencyKey is the create's key: the Idempotency-Key header or the body's request_id
// (the same when both are given). The core checks the key as the request's request_id; a
// key from the header is checked by the same rule here, so that the error names the header.
func idempotencyKey(h http.Header, inBody string) (string, error) {
	keys := h.Values(HeaderIdempotencyKey)
	if len(keys) > 1 {
		return "", session.Invalid(HeaderIdempotencyKey, "%s is given %d times", HeaderIdempotencyKey, len(keys))
	}
	header := h.Get(HeaderIdempotencyKey)
	if err := session.CheckRequestID(HeaderIdempotencyKey, header); err != nil {
		return "", err
	}
	if header != "" && inBody != "" && header != inBody {
		return "", session.Invalid("request_id", "request_id and the %s header differ", HeaderIdempotencyKey)
	}
	if header != "" {
		return header, nil
	}
	return inBody, nil
}

// updateRequest reads PATCH /session/{uuid}'s body.
func updateRequest(b UpdateBody) (session.UpdateRequest, error) {
	req := b.UpdateRequest
	var err error
	if req.IdleTimeout, err = duration(b.IdleTimeout, "idle_timeout"); err != nil {
		return req, err
	}
	if req.IdleConnectedMax, err = duration(b.IdleConnectedMax, "idle_connected_max"); err != nil {
		return req, err
	}
	req.TTL, err = duration(b.TTL, "ttl")
	return req, err
}

// duration reads "15m" or a number of seconds; absent or null is nil.
func duration(raw json.RawMessage, field string) (*session.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var d session.Duration
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, session.Invalid(field, "%s: %s", field, err.Error())
	}
	return &d, nil
}

// decode reads a JSON object body into dst: Content-Type application/json (or
// application/merge-patch+json), at most MaxBodyBytes, no unknown members, nothing after the
// object. An empty body is an error when required, else nothing to read.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any, required bool) error {
	if r.ContentLength > s.opts.MaxBodyBytes {
		return tooLarge(s.opts.MaxBodyBytes)
	}
	if r.Body == nil { // a server request always has one; a handler called directly may not
		r.Body = http.NoBody
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(s.opts.MaxBodyBytes)
		}
		return session.Invalid("body", "reading the body: the connection failed")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if required {
			return session.Invalid("body", "a JSON object body is required")
		}
		return nil
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return session.Invalid("body", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// noBody reads a body that must be empty or {}.
func (s *Server) noBody(w http.ResponseWriter, r *http.Request) error {
	return s.decode(w, r, &struct{}{}, false)
}

func tooLarge(limit int64) error {
	return &wire.Error{Code: wire.CodePayloadTooLarge, Field: "body", Message: fmt.Sprintf("the body is larger than %d bytes", limit)}
}

func checkContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "application/merge-patch+json") {
		return nil
	}
	return &wire.Error{Code: wire.CodeUnsupportedMediaType, Field: "Content-Type",
		Message: "the body must be JSON: send Content-Type: application/json"}
}

// decodeError names the member at fault in a JSON decoding error.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return session.Invalid("body", "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return session.Invalid("body", "the JSON body ends too early")
	case errors.As(err, &typ):
		field := member(typ.Field)
		if field == "" {
			return session.Invalid("body", "the body must be a JSON object, not %s", typ.Value)
		}
		return session.Invalid(field, "%s must be %s, not %s", field, jsonType(typ.Type), typ.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name, uerr := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		if uerr != nil || len(name) > 64 || !isPrintableASCII(name) {
			return session.Invalid("body", "the body holds an unknown member")
		}
		return session.Invalid(name, "unknown member %q", name)
	}
	return session.Invalid("body", "the body is not valid JSON for this route")
}

// member is the body member a decoding error's path names: its first segment that is not an
// embedded struct's Go name (the bodies' members are lower-case).
func member(path string) string {
	for seg := range strings.SplitSeq(path, ".") {
		if seg != "" && !unicode.IsUpper(rune(seg[0])) {
			return seg
		}
	}
	return ""
}

func jsonType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "another type"
}
