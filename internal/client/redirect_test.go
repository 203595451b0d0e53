package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// TestNoKeyOnCrossHostRedirect: an API that redirects to another host gets an error naming
// that host, and the other host never sees the key (nor a request); a redirect within the
// API's own origin is followed.
func TestNoKeyOnCrossHostRedirect(t *testing.T) {
	var otherCalls, keysSeen atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherCalls.Add(1)
		if r.Header.Get(wire.HeaderAPIKey) != "" {
			keysSeen.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sessions":[],"count":0}`))
	}))
	t.Cleanup(other.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sessions": // elsewhere
			http.Redirect(w, r, other.URL+"/sessions", http.StatusFound)
		case "/old/sessions": // within the origin
			http.Redirect(w, r, "/new/sessions", http.StatusMovedPermanently)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"sessions":[],"count":0}`))
		}
	}))
	t.Cleanup(api.Close)

	c, err := New(api.URL, key, WithRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(context.Background(), session.ListOptions{})
	otherHost := strings.TrimPrefix(other.URL, "http://")
	var re *RedirectError
	if !errors.As(err, &re) || re.Host != otherHost || session.FieldOf(err) != "endpoint" || session.KindOf(err) != session.KindInvalid ||
		!strings.Contains(err.Error(), otherHost) {
		t.Fatalf("a redirect to %s: %v", otherHost, err)
	}
	if otherCalls.Load() != 0 || keysSeen.Load() != 0 {
		t.Fatalf("the other host got %d requests, %d with the key", otherCalls.Load(), keysSeen.Load())
	}

	// the caller's own http.Client is left as it was, and same-origin redirects are followed
	hc := &http.Client{}
	within, err := New(api.URL+"/old", key, WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := within.List(context.Background(), session.ListOptions{}); err != nil {
		t.Fatalf("a redirect within the origin: %v", err)
	}
	if hc.CheckRedirect != nil {
		t.Fatal("New changed the caller's http.Client")
	}
}

// TestSameOrigin: scheme and host (default ports made explicit) must both stay.
func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://api.example.com/v1")
	check := sameOrigin(base, nil)
	for target, ok := range map[string]bool{
		"https://api.example.com/v1/sessions":    true,
		"https://API.example.com:443/v1/x":       true,
		"http://api.example.com/v1/sessions":     false, // a downgrade
		"https://api.example.com:8443/v1":        false,
		"https://evil.example.com/v1/sessions":   false,
		"https://api.example.com.evil.test/v1/x": false,
	} {
		u, _ := url.Parse(target)
		err := check(&http.Request{URL: u}, []*http.Request{{URL: base}})
		var re *RedirectError
		if ok != (err == nil) || (!ok && (!errors.As(err, &re) || !strings.Contains(err.Error(), u.Host))) {
			t.Errorf("%s: %v", target, err)
		}
	}
	u, _ := url.Parse("https://api.example.com/v1/x")
	if err := check(&http.Request{URL: u}, make([]*http.Request, maxRedirects)); err == nil {
		t.Error("endless redirects within the origin are followed")
	}
}

// TestPlainHTTPOnlyToLoopback: http:// is refused, naming endpoint, unless the host is a
// loopback address.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for ep, ok := range map[string]bool{
		"https://api.example.com":        true,
		"http://127.0.0.1:8080":          true,
		"http://127.1.2.3":               true,
		"http://[::1]:8080/v1":           true,
		"http://localhost:8080":          true,
		"http://LocalHost":               true,
		"http://[::ffff:127.0.0.1]":      true,
		"http://api.example.com":         false,
		"http://10.0.0.1:8080":           false,
		"http://localhost.example.com":   false,
		"http://127.0.0.1.nip.io":        false,
		"http://[::2]":                   false,
		"http://0.0.0.0:8080":            false,
		"http://user:pw@api.example.com": false,
	} {
		_, err := New(ep, key)
		if ok != (err == nil) || (!ok && (session.FieldOf(err) != "endpoint" || !strings.Contains(err.Error(), "http"))) {
			t.Errorf("%s: %v", ep, err)
		}
		if !ok && strings.Contains(ep, "pw") && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error shows the password: %v", ep, err)
		}
	}
}
