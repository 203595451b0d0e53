package api

import (
	"bytes"
	"context"
	"encoding/base64"
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

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// HeaderIdempotencyKey makes a retried create return the first attempt's session.
const HeaderIdempotencyKey = "Idempotency-Key"

// MaxIdempotencyKey is the longest idempotency key accepted.
const MaxIdempotencyKey = 128

// MaxListLimit is the largest page GET /sessions serves.
const MaxListLimit = 1000

// maxCursor bounds a cursor's length (the store's are far shorter).
const maxCursor = 512

// CreateBody is POST /session/create's body.
type CreateBody struct {
	UserID         string            `json:"user_id"`
	Image          string            `json:"image,omitempty"`
	Storage        string            `json:"storage,omitempty"`
	CPU            string            `json:"cpu,omitempty"`
	Memory         string            `json:"memory,omitempty"`
	IdleTimeout    json.RawMessage   `json:"idle_timeout,omitempty"`
	BackupOnDelete *bool             `json:"backup_on_delete,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	TTL            json.RawMessage   `json:"ttl,omitempty"`
	State          string            `json:"state,omitempty"`
	RequestID      string            `json:"request_id,omitempty"`
}

// UpdateBody is PATCH /session/{uuid}'s body: absent (or null) members are left as they are;
// "labels" replaces every user label ({} removes them all).
type UpdateBody struct {
	Image          *string           `json:"image,omitempty"`
	Storage        *string           `json:"storage,omitempty"`
	CPU            *string           `json:"cpu,omitempty"`
	Memory         *string           `json:"memory,omitempty"`
	IdleTimeout    json.RawMessage   `json:"idle_timeout,omitempty"`
	BackupOnDelete *bool             `json:"backup_on_delete,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	TTL            json.RawMessage   `json:"ttl,omitempty"`
}

// ListResponse is GET /sessions' answer.
type ListResponse struct {
	Sessions   []*session.Session `json:"sessions"`
	Count      int                `json:"count"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// ---- handlers ----

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	var body CreateBody
	if err := s.decode(w, r, &body, true); err != nil {
		return err
	}
	req, err := createRequest(body, r.Header.Get(HeaderIdempotencyKey), r.Header.Values(HeaderIdempotencyKey))
	if err != nil {
		return err
	}
	start := s.now()
	sess, err := s.m.Create(r.Context(), req)
	if err != nil {
		return err
	}
	s.metrics.phase("create_accepted", s.now().Sub(start))
	s.metrics.count(&s.metrics.created)
	w.Header().Set("Location", "/session/"+sess.ID+"/status")
	writeJSON(w, http.StatusCreated, sess)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	start := s.now()
	sess, err := s.m.Get(r.Context(), id)
	if err != nil {
		return err
	}
	s.observeReady(sess, start)
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) sleep(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, "sleep", &s.metrics.slept, s.m.Sleep)
}

func (s *Server) wake(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, "wake_accepted", &s.metrics.woken, s.m.Wake)
}

// transition serves sleep and wake: no query, an empty body (or {}), 200 with the session.
func (s *Server) transition(w http.ResponseWriter, r *http.Request, phase string, counter *int64Counter,
	fn func(ctx context.Context, id string) (*session.Session, error)) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	if err := s.decode(w, r, &struct{}{}, false); err != nil {
		return err
	}
	start := s.now()
	sess, err := fn(r.Context(), id)
	if err != nil {
		return err
	}
	s.metrics.phase(phase, s.now().Sub(start))
	s.metrics.count(counter)
	s.observeReady(sess, start)
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	var body UpdateBody
	if err := s.decode(w, r, &body, true); err != nil {
		return err
	}
	req, err := updateRequest(body)
	if err != nil {
		return err
	}
	start := s.now()
	sess, err := s.m.Update(r.Context(), id, req)
	if err != nil {
		return err
	}
	s.metrics.phase("update", s.now().Sub(start))
	s.metrics.count(&s.metrics.updated)
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "skip_backup")
	if err != nil {
		return err
	}
	var opts session.DeleteOptions
	if v, ok := q["skip_backup"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("skip_backup", "skip_backup must be true or false")
		}
		opts.SkipBackup = b
	}
	if err := s.decode(w, r, &struct{}{}, false); err != nil {
		return err
	}
	start := s.now()
	sess, err := s.m.Delete(r.Context(), id, opts)
	if err != nil {
		return err
	}
	s.metrics.phase("delete_accepted", s.now().Sub(start))
	s.metrics.count(&s.metrics.deleted)
	status := http.StatusAccepted
	if sess.State == session.StateDeleted {
		status = http.StatusOK
	}
	writeJSON(w, status, sess)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "user_id", "status", "limit", "cursor")
	if err != nil {
		return err
	}
	opts, err := listOptions(q)
	if err != nil {
		return err
	}
	res, err := s.m.List(r.Context(), opts)
	if err != nil {
		return err
	}
	out := ListResponse{Sessions: res.Sessions, NextCursor: res.NextCursor}
	if out.Sessions == nil {
		out.Sessions = []*session.Session{}
	}
	out.Count = len(out.Sessions)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// observeReady records how long a session took to turn running, when this request saw it
// turn (its record was written during the request).
func (s *Server) observeReady(sess *session.Session, start time.Time) {
	if sess == nil || sess.State != session.StateRunning || sess.UpdatedAt.Before(start) {
		return
	}
	// Wake sets LastActivity to the wake's start; a created session's activity starts at CreatedAt.
	if sess.LastActivity.Sub(sess.CreatedAt) > time.Second {
		s.metrics.phase("wake_to_running", sess.UpdatedAt.Sub(sess.LastActivity))
		return
	}
	s.metrics.phase("create_to_running", sess.UpdatedAt.Sub(sess.CreatedAt))
}

// ---- input ----

// pathID reads and checks the {uuid} path segment: a malformed id never reaches the Manager.
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
		return nil, badRequest("query", "the query string is malformed")
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
				return nil, badRequest(name, "unknown query parameter %q: this route takes none", name)
			}
			return nil, badRequest(name, "unknown query parameter %q (allowed: %s)", name, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, badRequest(k, "%s is given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	return out, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func listOptions(q map[string]string) (session.ListOptions, error) {
	var opts session.ListOptions
	if v, ok := q["user_id"]; ok {
		if err := session.CheckUserID(v); err != nil {
			return opts, err
		}
		opts.UserID = v
	}
	if v, ok := q["status"]; ok {
		st := session.State(v)
		if !st.Valid() {
			names := make([]string, len(session.States))
			for i, x := range session.States {
				names[i] = string(x)
			}
			return opts, badRequest("status", "status must be one of %s", strings.Join(names, ", "))
		}
		opts.State = st
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return opts, badRequest("limit", "limit must be a whole number from 1 to %d", MaxListLimit)
		}
		opts.Limit = n
	}
	if v, ok := q["cursor"]; ok {
		if !validCursor(v) {
			return opts, badRequest("cursor", "cursor is not one this API returned")
		}
		opts.Cursor = v
	}
	return opts, nil
}

// validCursor checks a cursor's shape: the store's cursors are unpadded base64url. What it
// holds is the store's to judge.
func validCursor(c string) bool {
	if c == "" || len(c) > maxCursor {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func createRequest(b CreateBody, idemKey string, idemKeys []string) (session.CreateRequest, error) {
	req := session.CreateRequest{
		UserID: b.UserID, Image: strings.TrimSpace(b.Image), Storage: strings.TrimSpace(b.Storage),
		CPU: strings.TrimSpace(b.CPU), Memory: strings.TrimSpace(b.Memory),
		BackupOnDelete: b.BackupOnDelete, Labels: b.Labels, State: session.State(b.State),
	}
	if err := session.CheckUserID(b.UserID); err != nil {
		return req, err
	}
	if req.Image != "" {
		if err := session.CheckImage("image", req.Image); err != nil {
			return req, err
		}
	}
	for _, q := range []struct{ field, v string }{{"storage", req.Storage}, {"cpu", req.CPU}, {"memory", req.Memory}} {
		if q.v != "" {
			if _, err := session.ParseQuantity(q.field, q.v); err != nil {
				return req, err
			}
		}
	}
	d, err := idleTimeout(b.IdleTimeout)
	if err != nil {
		return req, err
	}
	req.IdleTimeout = d
	if req.TTL, err = ttl(b.TTL); err != nil {
		return req, err
	}
	if err := session.CheckLabels(b.Labels); err != nil {
		return req, err
	}
	if err := session.CheckState("state", req.State); err != nil {
		return req, err
	}
	if len(idemKeys) > 1 {
		return req, badRequest(HeaderIdempotencyKey, "%s is given %d times", HeaderIdempotencyKey, len(idemKeys))
	}
	for _, k := range []struct{ field, v string }{{HeaderIdempotencyKey, idemKey}, {"request_id", b.RequestID}} {
		if k.v != "" && (len(k.v) > MaxIdempotencyKey || !isPrintableASCII(k.v)) {
			return req, badRequest(k.field, "%s must be 1 to %d printable ASCII characters without spaces", k.field, MaxIdempotencyKey)
		}
	}
	if idemKey != "" && b.RequestID != "" && idemKey != b.RequestID {
		return req, badRequest("request_id", "request_id and the %s header differ", HeaderIdempotencyKey)
	}
	req.RequestID = idemKey
	if req.RequestID == "" {
		req.RequestID = b.RequestID
	}
	return req, nil
}

func updateRequest(b UpdateBody) (session.UpdateRequest, error) {
	req := session.UpdateRequest{BackupOnDelete: b.BackupOnDelete, Labels: b.Labels}
	if b.Image != nil {
		v := strings.TrimSpace(*b.Image)
		if err := session.CheckImage("image", v); err != nil {
			return req, err
		}
		req.Image = &v
	}
	for _, q := range []struct {
		field string
		in    *string
		out   **string
	}{{"storage", b.Storage, &req.Storage}, {"cpu", b.CPU, &req.CPU}, {"memory", b.Memory, &req.Memory}} {
		if q.in == nil {
			continue
		}
		v := strings.TrimSpace(*q.in)
		if _, err := session.ParseQuantity(q.field, v); err != nil {
			return req, err
		}
		*q.out = &v
	}
	d, err := idleTimeout(b.IdleTimeout)
	if err != nil {
		return req, err
	}
	req.IdleTimeout = d
	if req.TTL, err = ttl(b.TTL); err != nil {
		return req, err
	}
	if err := session.CheckLabels(b.Labels); err != nil {
		return req, err
	}
	return req, nil
}

// idleTimeout reads "15m" or a number of seconds; absent or null is nil. 0 never sleeps;
// otherwise at least a minute (the sweep runs every minute).
func idleTimeout(raw json.RawMessage) (*session.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var d session.Duration
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, badRequest("idle_timeout", "idle_timeout: %s", err.Error())
	}
	if err := session.CheckIdleTimeout(d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ttl reads a session lifetime, "72h" or a number of seconds; absent or null is nil (the
// server's SESSION_TTL on a create, unchanged on an update). 0 never expires; otherwise at
// least an hour.
func ttl(raw json.RawMessage) (*session.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var d session.Duration
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, badRequest("ttl", "ttl: %s", err.Error())
	}
	if err := session.CheckTTL(d); err != nil {
		return nil, err
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
		return badRequest("body", "reading the body: the connection failed")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if required {
			return badRequest("body", "a JSON object body is required")
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
	if err := dec.Decode(&extra); err != io.EOF {
		return badRequest("body", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

func tooLarge(limit int64) error {
	return &HTTPError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Field: "body",
		Message: fmt.Sprintf("the body is larger than %d bytes", limit)}
}

func checkContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "application/merge-patch+json") {
		return nil
	}
	return &HTTPError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Field: "Content-Type",
		Message: "the body must be JSON: send Content-Type: application/json"}
}

// decodeError names the member at fault in a JSON decoding error.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("body", "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "the JSON body ends too early")
	case errors.As(err, &typ):
		field, _, _ := strings.Cut(typ.Field, ".")
		if field == "" {
			return badRequest("body", "the body must be a JSON object, not %s", typ.Value)
		}
		return badRequest(field, "%s must be %s, not %s", field, jsonType(typ.Type), typ.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name, uerr := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		if uerr != nil || len(name) > 64 || !isPrintableASCII(name) {
			return badRequest("body", "the body holds an unknown member")
		}
		return badRequest(name, "unknown member %q", name)
	}
	return badRequest("body", "the body is not valid JSON for this route")
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

func itoa(n int) string { return strconv.Itoa(n) }
