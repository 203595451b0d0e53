// Package apispec checks the API against its OpenAPI document (docs/api/openapi.yaml) with
// github.com/getkin/kin-openapi: which operations the document names, and whether an answer
// matches the document's response for its route and status. Tests use it.
package apispec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is a loaded, validated OpenAPI document.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router
}

// Load reads and validates the document at path.
func Load(ctx context.Context, path string) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validating %s: %w", path, err)
	}
	// Match requests to any host: tests serve on random ports.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router for %s: %w", path, err)
	}
	return &Spec{Doc: doc, router: r}, nil
}

// Operations lists the document's operations as ServeMux patterns ("GET /sessions"), sorted.
func (s *Spec) Operations() []string {
	var out []string
	for path, item := range s.Doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// CheckResponse validates an answer to req against the document: the route must be in it,
// the status declared (or covered by "default"), and a JSON body must match its schema.
func (s *Spec) CheckResponse(ctx context.Context, req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s is not in the document: %w", req.Method, req.URL.Path, err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		opts.ExcludeResponseBody = true // the Prometheus exposition: no schema to check
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return fmt.Errorf("%s %s → %d does not match the document: %w\nbody: %s", req.Method, req.URL.Path, status, err, body)
	}
	return nil
}

// Transport is an http.RoundTripper that checks every answer against the document and
// reports mismatches through Fail (the body is kept for the caller).
type Transport struct {
	Spec *Spec
	Base http.RoundTripper
	Fail func(err error)
}

// RoundTrip sends req and checks the answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil { // a body that could not be read whole is not checked; the caller gets what was read
		return resp, nil //nolint:nilerr // the transport's answer is passed on as it came
	}
	if err := t.Spec.CheckResponse(req.Context(), req, resp.StatusCode, resp.Header, body); err != nil && t.Fail != nil {
		t.Fail(err)
	}
	return resp, nil
}
