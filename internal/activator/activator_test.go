package activator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestLinks(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	good := SignLink(testSecret, asleepID, now.Add(time.Hour))
	if !VerifyLink(testSecret, asleepID, good, now) {
		t.Fatal("a fresh link is refused")
	}
	flip := []byte(good)
	flip[len(flip)-2] ^= 1
	exp := now.Add(time.Hour).Unix()
	for name, ok := range map[string]bool{
		"tampered mac":           VerifyLink(testSecret, asleepID, string(flip), now),
		"another session":        VerifyLink(testSecret, "zz99zz99", good, now),
		"another secret":         VerifyLink([]byte("another-secret-another-secret-0000"), asleepID, good, now),
		"expired":                VerifyLink(testSecret, asleepID, good, now.Add(time.Hour)),
		"longer than 24h":        VerifyLink(testSecret, asleepID, SignLink(testSecret, asleepID, now.Add(25*time.Hour)), now),
		"a cookie is not a link": VerifyLink(testSecret, asleepID, signCookie(testSecret, asleepID, now.Add(time.Hour)), now),
		"moved expiry":           VerifyLink(testSecret, asleepID, fmt.Sprint(exp+3600)+good[strings.IndexByte(good, '.'):], now),
		"empty":                  VerifyLink(testSecret, asleepID, "", now),
		"no mac":                 VerifyLink(testSecret, asleepID, fmt.Sprint(exp)+".", now),
		"junk":                   VerifyLink(testSecret, asleepID, "not.a-token", now),
		"negative":               VerifyLink(testSecret, asleepID, "-5."+strings.Repeat("A", 43), now),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if !VerifyLink(testSecret, asleepID, SignLink(testSecret, asleepID, now.Add(24*time.Hour)), now) {
		t.Error("a 24h link is refused")
	}
	if verifyCookie(testSecret, asleepID, good, now) {
		t.Error("a link is accepted as a cookie")
	}
	link := WakeLink("https://vs-code-ab12cd34.ws.test", testSecret, asleepID, now.Add(time.Hour))
	u, err := url.Parse(link)
	if err != nil || u.Host != "vs-code-ab12cd34.ws.test" || u.Path != "/" || !VerifyLink(testSecret, asleepID, u.Query().Get(LinkParam), now) {
		t.Errorf("wake link %s (%v)", link, err)
	}
}

func TestHosts(t *testing.T) {
	for host, want := range map[string]string{
		"vs-code-ab12cd34.ws.test":      "ab12cd34",
		"VS-CODE-AB12CD34.WS.TEST":      "ab12cd34",
		"vs-code-ab12cd34.ws.test:8443": "ab12cd34",
		"vs-code-ab12cd34.ws.test.":     "ab12cd34",
	} {
		if id, ok := sessionID(host, testDomain); !ok || id != want {
			t.Errorf("%s: %q %v", host, id, ok)
		}
	}
	for _, host := range []string{"", "ws.test", "vs-code-ab12cd34.ws.test.evil.example", "x.vs-code-ab12cd34.ws.test",
		"vs-code-1b12cd34.ws.test", "vs-code-ab12cd3.ws.test", "code-ab12cd34.ws.test", "vs-code-ab12cd34.evilws.test",
		"vs-code-ab12cd34-data.ws.test", "[::1]:80"} {
		if id, ok := sessionID(host, testDomain); ok {
			t.Errorf("%s: accepted as %q", host, id)
		}
	}
}

func TestForwardedHostAndClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("10.0.0.0/8")}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = "session-api-1.run.app"
	r.Header.Set("X-Forwarded-Host", "vs-code-ab12cd34.ws.test")
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 10.1.2.3")
	r.RemoteAddr = "169.254.1.1:5000"
	if h := workspaceHost(r, trusted); h != "vs-code-ab12cd34.ws.test" {
		t.Errorf("trusted peer: host %s", h)
	}
	if ip := clientip.Of(r, trusted); ip.String() != "198.51.100.7" {
		t.Errorf("trusted peer: client %s", ip)
	}
	r.RemoteAddr = "203.0.113.9:5000"
	if h := workspaceHost(r, trusted); h != "session-api-1.run.app" {
		t.Errorf("untrusted peer: host %s", h)
	}
	if ip := clientip.Of(r, trusted); ip.String() != "203.0.113.9" {
		t.Errorf("untrusted peer: client %s", ip)
	}
}

func TestDispatch(t *testing.T) {
	u := newUnit(t, nil)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	d := Dispatch(api, u.h)
	for _, tc := range []struct {
		host, fwd, peer string
		activator       bool
	}{
		{"session-api-1.run.app", "", "192.0.2.1:1", false},
		{host(asleepID), "", "192.0.2.1:1", true},
		{"vs-code-NOTANID.ws.test", "", "192.0.2.1:1", true}, // the activator's 404 page, not the API's
		{"session-api-1.run.app", host(asleepID), "10.0.0.7:1", true},
		{"session-api-1.run.app", host(asleepID), "192.0.2.1:1", false}, // a stranger's X-Forwarded-Host
		{"session-api-1.run.app", "api.example.com", "10.0.0.7:1", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host, r.RemoteAddr = tc.host, tc.peer
		if tc.fwd != "" {
			r.Header.Set("X-Forwarded-Host", tc.fwd)
		}
		w := httptest.NewRecorder()
		d.ServeHTTP(w, r)
		if got := w.Code != http.StatusTeapot; got != tc.activator {
			t.Errorf("%+v: activator %v (status %d)", tc, got, w.Code)
		}
	}
	if Dispatch(api, nil) == nil {
		t.Error("Dispatch without an activator")
	}
}

// phc hashes pw as code-server does (its argon2 parameters, a 16-byte salt) and formats it
// with params in the PHC string, so a test can write a cookie with other parameters.
func phc(pw, params string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonHashBytes)
	return fmt.Sprintf("$argon2id$v=19$%s$%s$%s", params,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Only code-server's own parameters are taken, and anything else is refused before hashing.
func TestCodeServerCookie(t *testing.T) {
	c := phc(testPW, argonParams)
	b64 := base64.RawStdEncoding.EncodeToString
	for name, tc := range map[string]struct {
		cookie, pw string
		want       bool
	}{
		"matches":         {c, testPW, true},
		"percent-encoded": {url.QueryEscape(c), testPW, true},
		"wrong password":  {c, "nope", false},
		"empty password":  {c, "", false},
	} {
		if got := codeServerCookieMatches(tc.cookie, tc.pw); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	salt, sum := b64([]byte("0123456789abcdef")), c[strings.LastIndexByte(c, '$')+1:]
	for name, cookie := range map[string]string{
		"argon2i":            strings.Replace(c, "argon2id", "argon2i", 1),
		"argon2d":            strings.Replace(c, "argon2id", "argon2d", 1),
		"old version":        strings.Replace(c, "v=19", "v=16", 1),
		"no version":         strings.Replace(c, "$v=19", "", 1),
		"4 GiB of memory":    strings.Replace(c, "m=65536", "m=4194304", 1),
		"less memory":        strings.Replace(c, "m=65536", "m=1024", 1),
		"99 passes":          strings.Replace(c, "t=3", "t=99", 1),
		"255 lanes":          strings.Replace(c, "p=4", "p=255", 1),
		"parameters padded":  strings.Replace(c, "m=65536", "m=065536", 1),
		"parameters moved":   strings.Replace(c, "m=65536,t=3,p=4", "t=3,m=65536,p=4", 1),
		"extra parameter":    strings.Replace(c, "p=4", "p=4,data=x", 1),
		"a long salt":        strings.Replace(c, salt, b64(make([]byte, 4096)), 1),
		"a short salt":       strings.Replace(c, salt, b64(make([]byte, 8)), 1),
		"a long hash":        strings.Replace(c, sum, b64(make([]byte, 1024)), 1),
		"a bad salt":         strings.Replace(c, salt, strings.Repeat("*", len(salt)), 1),
		"not a hash":         "s%3Asomething.signed",
		"missing a section":  c[:strings.LastIndexByte(c, '$')],
		"a section too many": c + "$x",
	} {
		if _, err := parseArgon2(cookie); err == nil {
			t.Errorf("%s: parsed", name)
		}
		if codeServerCookieMatches(cookie, testPW) {
			t.Errorf("%s: matches", name)
		}
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/":                             "/",
		"/?folder=/app":                 "/?folder=/app",
		"/x/y?z=1#f":                    "/x/y?z=1#f",
		"":                              "/",
		"https://evil.example/":         "/",
		"//evil.example/":               "/",
		"/\\evil.example":               "/",
		"evil":                          "/",
		"/.hyperbola/wake":              "/",
		"/a\r\nSet-Cookie: x=1":         "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

// A sleeping workspace wakes only with a proof, and a stranger gets the page that asks for
// the password.
func TestHandlerWakesOnlyWithProof(t *testing.T) {
	u := newUnit(t, nil)
	w := u.do("GET", host(asleepID), "/?folder=/app", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="password"`) || len(u.sessions.woken()) != 0 {
		t.Fatalf("no proof: %d woke %v\n%s", w.Code, u.sessions.woken(), w.Body)
	}
	if !strings.Contains(w.Body.String(), `value="/?folder=/app"`) {
		t.Error("the form does not return to the page asked for")
	}
	forged := &http.Cookie{Name: hostWake, Value: signCookie([]byte("another-secret-another-secret-000"), asleepID, u.now.Add(time.Hour))}
	other := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, runningID, u.now.Add(time.Hour))}
	expired := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(-time.Second))}
	for name, c := range map[string]*http.Cookie{"forged": forged, "another session's": other, "expired": expired} {
		if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusOK || len(u.sessions.woken()) != 0 {
			t.Errorf("%s cookie: %d, woke %v", name, w.Code, u.sessions.woken())
		}
	}
	for name, token := range map[string]string{
		"expired":         SignLink(testSecret, asleepID, u.now.Add(-time.Minute)),
		"another session": SignLink(testSecret, runningID, u.now.Add(time.Hour)),
		"too long":        SignLink(testSecret, asleepID, u.now.Add(48*time.Hour)),
		"tampered":        SignLink(testSecret, asleepID, u.now.Add(time.Hour)) + "x",
		"empty":           "",
	} {
		w := u.do("GET", host(asleepID), "/?"+LinkParam+"="+url.QueryEscape(token), nil)
		if w.Code != http.StatusForbidden || len(u.sessions.woken()) != 0 || cookieOf(t, w, hostWake) != nil {
			t.Errorf("%s link: %d, woke %v", name, w.Code, u.sessions.woken())
		}
	}

	// a good link: wake, cookie, and the token leaves the address
	token := SignLink(testSecret, asleepID, u.now.Add(time.Hour))
	w = u.do("GET", host(asleepID), "/some/path?folder=/app&"+LinkParam+"="+url.QueryEscape(token), nil)
	if w.Code != http.StatusSeeOther || fmt.Sprint(u.sessions.woken()) != "[activator]" {
		t.Fatalf("link: %d woke %v", w.Code, u.sessions.woken())
	}
	if loc := w.Header().Get("Location"); loc != "https://"+host(asleepID)+"/some/path?folder=/app" {
		t.Errorf("link redirects to %s", loc)
	}
	c := cookieOf(t, w, hostWake)
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 7*24*3600 {
		t.Fatalf("wake cookie %+v", c)
	}
	// the cookie alone: the waking page (the session is waking now: no second wake)
	w = u.do("GET", host(asleepID), "/some/path", nil, c)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Waking your workspace") || len(u.sessions.woken()) != 1 {
		t.Fatalf("cookie: %d woke %v\n%s", w.Code, u.sessions.woken(), w.Body)
	}
	// asleep again, the cookie wakes it
	u.sessions.setState(asleepID, session.StateSleeping)
	if w = u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusOK || len(u.sessions.woken()) != 2 {
		t.Fatalf("cookie after sleep: %d woke %v", w.Code, u.sessions.woken())
	}
	// HEAD never wakes
	u.sessions.setState(asleepID, session.StateSleeping)
	if w = u.do("HEAD", host(asleepID), "/", nil, c); w.Code != http.StatusOK || len(u.sessions.woken()) != 2 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d woke %v body %d", w.Code, u.sessions.woken(), w.Body.Len())
	}
}

// A workspace that is starting already needs no proof to be waited for: nothing is woken.
func TestHandlerStartingNeedsNoProof(t *testing.T) {
	u := newUnit(t, nil)
	u.sessions.setState(asleepID, session.StateWaking)
	w := u.do("GET", host(asleepID), "/", nil)
	b := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(b, "This workspace is starting") || strings.Contains(b, "<noscript><meta") ||
		!strings.Contains(b, `<meta http-equiv="refresh" content="3">`) || strings.Contains(b, `type="password"`) || strings.Contains(b, "<script") {
		t.Fatalf("starting, without proof: %d\n%s", w.Code, b)
	}
	if len(u.sessions.woken()) != 0 {
		t.Errorf("woke %v", u.sessions.woken())
	}
}

func TestHandlerCodeServerCookieWakes(t *testing.T) {
	u := newUnit(t, nil)
	bad := &http.Cookie{Name: CodeServerCookie, Value: url.QueryEscape(phc("not-it", argonParams))}
	if w := u.do("GET", host(asleepID), "/", nil, bad); w.Code != http.StatusOK || len(u.sessions.woken()) != 0 {
		t.Fatalf("wrong code-server cookie: %d, woke %v", w.Code, u.sessions.woken())
	}
	good := &http.Cookie{Name: CodeServerCookie, Value: url.QueryEscape(phc(testPW, argonParams))}
	w := u.do("GET", host(asleepID), "/", nil, good)
	if w.Code != http.StatusOK || len(u.sessions.woken()) != 1 || cookieOf(t, w, hostWake) == nil {
		t.Fatalf("code-server cookie: %d, woke %v", w.Code, u.sessions.woken())
	}

	// over the per-session limit the cookie is not checked, and the page asks for the
	// password (a stale cookie never turns the page into a 429)
	u = newUnit(t, func(o *Options) { o.CookieChecksPerSession = 1 })
	for i := range 3 {
		w := u.do("GET", host(asleepID), "/", nil, bad)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `type="password"`) {
			t.Fatalf("stale cookie, request %d: %d", i+1, w.Code)
		}
	}
	if w := u.do("GET", host(asleepID), "/", nil, good); w.Code != http.StatusOK || len(u.sessions.woken()) != 0 {
		t.Fatalf("over the limit, a good cookie was checked: woke %v", u.sessions.woken())
	}
}

func TestHandlerPassword(t *testing.T) {
	u := newUnit(t, func(o *Options) { o.Scheme = "http" })
	w := u.do("POST", host(asleepID), WakePath, url.Values{"password": {"wrong"}, "return": {"/x?y=1"}})
	if w.Code != http.StatusUnauthorized || len(u.sessions.woken()) != 0 || cookieOf(t, w, WakeCookie) != nil {
		t.Fatalf("wrong password: %d woke %v", w.Code, u.sessions.woken())
	}
	if b := w.Body.String(); !strings.Contains(b, `aria-invalid="true"`) || !strings.Contains(b, `id="error"`) {
		t.Errorf("the wrong password is not announced:\n%s", b)
	}
	w = u.do("POST", host(asleepID), WakePath, url.Values{"password": {testPW}, "return": {"//evil.example/"}})
	if w.Code != http.StatusSeeOther || len(u.sessions.woken()) != 1 || w.Header().Get("Location") != "http://"+host(asleepID)+"/" {
		t.Fatalf("right password: %d woke %v location %s", w.Code, u.sessions.woken(), w.Header().Get("Location"))
	}
	if c := cookieOf(t, w, WakeCookie); c == nil || c.Secure {
		t.Errorf("over http the cookie is not Secure (or browsers drop it): %+v", c)
	}
	if w = u.do("GET", host(asleepID), WakePath, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d", WakePath, w.Code)
	}
}

func TestHandlerRunningRedirectsWithoutLooping(t *testing.T) {
	u := newUnit(t, nil)
	var hop *http.Cookie
	for i := range maxHops {
		var cs []*http.Cookie
		if hop != nil {
			cs = append(cs, hop)
		}
		w := u.do("GET", host(runningID), "/a?"+LinkParam+"=x&b=1", nil, cs...)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://"+host(runningID)+"/a?b=1" {
			t.Fatalf("hop %d: %d %s", i, w.Code, w.Header().Get("Location"))
		}
		hop = cookieOf(t, w, HostCookiePrefix+hopCookie)
	}
	w := u.do("GET", host(runningID), "/a", nil, hop)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `http-equiv="refresh" content="2"`) {
		t.Fatalf("after %d hops: %d\n%s", maxHops, w.Code, w.Body)
	}
	if len(u.sessions.woken()) != 0 {
		t.Error("a running session was woken")
	}
}

func TestHandlerStatus(t *testing.T) {
	u := newUnit(t, nil)
	if w := u.do("GET", host(asleepID), StatusPath, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("status without the cookie: %d", w.Code)
	}
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	w := u.do("GET", host(asleepID), StatusPath, nil, c)
	var st Status
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.State != session.StateSleeping || st.Ready {
		t.Fatalf("status: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("status may be cached")
	}
	u.sessions.setState(asleepID, session.StateRunning)
	w = u.do("GET", host(asleepID), StatusPath, nil, c)
	if json.Unmarshal(w.Body.Bytes(), &st) != nil || !st.Ready {
		t.Fatalf("running: %s", w.Body)
	}
	if len(u.sessions.woken()) != 0 {
		t.Error("the status endpoint woke the session")
	}
}

// A poll of a waking workspace is held until its pod is ready: the page opens the IDE the
// moment it can, not at its next poll a second later.
func TestHandlerStatusWaitsForTheWake(t *testing.T) {
	u := newUnit(t, nil)
	if s, err := u.sessions.Wake(t.Context(), asleepID); err != nil || s.State != session.StateWaking {
		t.Fatalf("wake: %+v %v", s, err)
	}
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	first, release1 := u.sessions.fakes.Cluster.Stall("Readiness")
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() { answered <- u.do("GET", host(asleepID), StatusPath, nil, c) }()
	<-first // the poll's own read: not ready
	second, release2 := u.sessions.fakes.Cluster.Stall("Readiness")
	release1()
	<-second // held: read again
	u.sessions.fakes.Cluster.SetReady(asleepID, true, "")
	release2()
	w := <-answered
	var st Status
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &st) != nil || !st.Ready || st.State != session.StateRunning {
		t.Fatalf("held status: %d %s", w.Code, w.Body)
	}
}

func TestHandlerNotFoundAndGone(t *testing.T) {
	u := newUnit(t, nil)
	for _, h := range []string{"vs-code-zz99zz99." + testDomain, "other.example", "vs-code-BAD." + testDomain} {
		if w := u.do("GET", h, "/", nil); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "No workspace here") {
			t.Errorf("%s: %d", h, w.Code)
		}
	}
	if w := u.do("GET", host(asleepID), "/.hyperbola/other", nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown own path: %d", w.Code)
	}
	u.sessions.setState(asleepID, session.StateDeleting)
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusNotFound || len(u.sessions.woken()) != 0 {
		t.Errorf("deleting: %d", w.Code)
	}
	u.sessions.setState(asleepID, session.StateFailed)
	if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusConflict || len(u.sessions.woken()) != 0 {
		t.Errorf("failed: %d", w.Code)
	}
	u.sessions.Fail("Get", session.Unavailable("redis", fmt.Errorf("down")))
	if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("redis down: %d", w.Code)
	}
}

// The IDE's own requests from a tab left open neither see a page nor wake anything.
func TestHandlerIgnoresTheIDEsRequests(t *testing.T) {
	u := newUnit(t, nil)
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	for name, set := range map[string]func(*http.Request){
		"websocket": func(r *http.Request) { r.Header.Set("Upgrade", "websocket"); r.Header.Set("Connection", "Upgrade") },
		"fetch":     func(r *http.Request) { r.Header.Set("Sec-Fetch-Mode", "cors") },
		"image":     func(r *http.Request) { r.Header.Set("Sec-Fetch-Mode", "no-cors") },
		"post":      func(r *http.Request) { r.Method = "POST" },
	} {
		r := httptest.NewRequest(http.MethodGet, "/stable-123/static/x.js", nil)
		r.Host, r.RemoteAddr = host(asleepID), "192.0.2.1:1"
		r.AddCookie(c)
		set(r)
		w := httptest.NewRecorder()
		u.h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if len(u.sessions.woken()) != 0 {
		t.Errorf("woke %v", u.sessions.woken())
	}
}

func TestHandlerRateLimits(t *testing.T) {
	u := newUnit(t, func(o *Options) { o.RequestsPerIP = 3; o.WakesPerSession = 1 })
	for i := range 3 {
		if w := u.do("GET", host(asleepID), "/", nil); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	w := u.do("GET", host(asleepID), "/", nil)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "6" || !strings.Contains(w.Body.String(), "6 seconds") {
		t.Fatalf("over the IP limit: %d %q", w.Code, w.Header().Get("Retry-After"))
	}

	u = newUnit(t, func(o *Options) { o.WakesPerSession = 1 })
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusOK || len(u.sessions.woken()) != 1 {
		t.Fatalf("first wake: %d", w.Code)
	}
	u.sessions.setState(asleepID, session.StateSleeping)
	if w := u.do("GET", host(asleepID), "/", nil, c); w.Code != http.StatusTooManyRequests || len(u.sessions.woken()) != 1 {
		t.Fatalf("second wake in the minute: %d, woke %v", w.Code, u.sessions.woken())
	}

	u = newUnit(t, func(o *Options) { o.PasswordsPerIP = 2 })
	for i := range 2 {
		if w := u.do("POST", host(asleepID), WakePath, url.Values{"password": {"guess"}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, w.Code)
		}
	}
	if w := u.do("POST", host(asleepID), WakePath, url.Values{"password": {testPW}}); w.Code != http.StatusTooManyRequests || len(u.sessions.woken()) != 0 {
		t.Fatalf("third password in the minute: %d", w.Code)
	}
}

// Password attempts and cookie checks have budgets per client IP and per session, spent in
// that order: a stranger over its IP's budget does not lock out the owner from another
// address, strangers that spend the session's budget leave the owner the wake link, and
// neither kind of check spends the other's budget.
func TestHandlerSeparateBudgets(t *testing.T) {
	const stranger, owner = "198.51.100.66", "203.0.113.5"
	u := newUnit(t, func(o *Options) { o.PasswordsPerIP, o.PasswordsPerSession = 3, 6 })
	guess := url.Values{"password": {"guess"}}
	for i := range 10 { // well over its IP's budget: the rest are refused before the session's
		want := http.StatusUnauthorized
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		if w := u.doFrom(stranger, "POST", host(asleepID), WakePath, guess); w.Code != want {
			t.Fatalf("stranger's guess %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if got := u.limiter.count("activator:password:" + asleepID); got != 3 {
		t.Errorf("the stranger spent %d of the session's budget, want 3 (its IP's)", got)
	}
	// the stranger's cookies spent nothing of the password budgets either
	bad := &http.Cookie{Name: CodeServerCookie, Value: url.QueryEscape(phc("not-it", argonParams))}
	if w := u.doFrom(stranger, "GET", host(asleepID), "/", nil, bad); w.Code != http.StatusOK {
		t.Fatalf("stranger's cookie: %d", w.Code)
	}
	w := u.doFrom(owner, "POST", host(asleepID), WakePath, url.Values{"password": {testPW}})
	if w.Code != http.StatusSeeOther || len(u.sessions.woken()) != 1 {
		t.Fatalf("the owner from another address: %d, woke %v", w.Code, u.sessions.woken())
	}

	// strangers from many addresses spend the session's budget: a password is refused for
	// the rest of the minute, the wake link still works
	u = newUnit(t, func(o *Options) { o.PasswordsPerIP, o.PasswordsPerSession = 3, 6 })
	for i := range 6 {
		if w := u.doFrom(fmt.Sprintf("198.51.100.%d", i/2+1), "POST", host(asleepID), WakePath, guess); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, w.Code)
		}
	}
	if w := u.doFrom(owner, "POST", host(asleepID), WakePath, url.Values{"password": {testPW}}); w.Code != http.StatusTooManyRequests {
		t.Fatalf("over the session's budget: %d", w.Code)
	}
	token := SignLink(testSecret, asleepID, u.now.Add(time.Hour))
	if w := u.doFrom(owner, "GET", host(asleepID), "/?"+LinkParam+"="+url.QueryEscape(token), nil); w.Code != http.StatusSeeOther || len(u.sessions.woken()) != 1 {
		t.Fatalf("the wake link over the password budget: %d, woke %v", w.Code, u.sessions.woken())
	}

	// cookie checks: the same shape, and they spend no password attempt
	u = newUnit(t, func(o *Options) { o.CookieChecksPerIP, o.CookieChecksPerSession = 2, 4 })
	for range 5 {
		if w := u.doFrom(stranger, "GET", host(asleepID), "/", nil, bad); w.Code != http.StatusOK {
			t.Fatalf("stranger's cookie: %d", w.Code)
		}
	}
	if got, pw := u.limiter.count("activator:cookie:"+asleepID), u.limiter.count("activator:password:"+asleepID); got != 2 || pw != 0 {
		t.Errorf("the stranger's cookies spent %d cookie checks and %d password attempts of the session's, want 2 and 0", got, pw)
	}
	good := &http.Cookie{Name: CodeServerCookie, Value: url.QueryEscape(phc(testPW, argonParams))}
	if w := u.doFrom(owner, "GET", host(asleepID), "/", nil, good); w.Code != http.StatusOK || len(u.sessions.woken()) != 1 {
		t.Fatalf("the owner's cookie from another address: %d, woke %v", w.Code, u.sessions.woken())
	}
	// a cookie with other parameters spends nothing at all: it is refused before the budgets
	crafted := &http.Cookie{Name: CodeServerCookie, Value: strings.Replace(phc("x", argonParams), "m=65536", "m=4194304", 1)}
	before := u.limiter.count("activator:cookie:ip:" + stranger)
	u.doFrom(stranger, "GET", host(asleepID), "/", nil, crafted)
	if after := u.limiter.count("activator:cookie:ip:" + stranger); after != before {
		t.Errorf("a crafted cookie spent a check (%d → %d)", before, after)
	}
}

// A wake refused by a quota says that the workspace cannot start now and which limit stops
// it, not that the service is unavailable; the proof is kept (the wake cookie), so a reload
// tries again without it.
func TestHandlerQuotaRefusal(t *testing.T) {
	for _, tc := range []struct {
		limits session.Limits
		limit  string
		says   string
	}{
		{session.Limits{MaxRunningPerUser: 1}, session.LimitRunningPerUser, "Its owner already has as many workspaces running as this deployment allows (max_running_per_user)."},
		{session.Limits{MaxRunning: 1}, session.LimitRunning, "This deployment already runs as many workspaces as it allows (max_running)."},
	} {
		u := newUnit(t, nil)
		u.sessions = newSessionsWith(session.Options{Domain: testDomain, Limits: tc.limits}, u.sessions.seeded...)
		u.h.deps.Sessions = u.sessions
		token := SignLink(testSecret, asleepID, u.now.Add(time.Hour))
		w := u.do("GET", host(asleepID), "/?"+LinkParam+"="+url.QueryEscape(token), nil)
		b := w.Body.String()
		if w.Code != http.StatusForbidden || !strings.Contains(b, "This workspace cannot start now") || !strings.Contains(b, tc.says) ||
			!strings.Contains(b, `data-limit="`+tc.limit+`"`) || strings.Contains(b, "Something went wrong") || strings.Contains(b, "http-equiv") {
			t.Errorf("%s: %d\n%s", tc.limit, w.Code, b)
		}
		if len(u.sessions.woken()) != 1 || cookieOf(t, w, hostWake) == nil {
			t.Errorf("%s: woke %v, wake cookie %v", tc.limit, u.sessions.woken(), cookieOf(t, w, hostWake))
		}
		if st := u.sessions.state(asleepID); st != session.StateSleeping {
			t.Errorf("%s: the refused session is %s", tc.limit, st)
		}
		// the password form says the same
		w = u.do("POST", host(asleepID), WakePath, url.Values{"password": {testPW}})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), tc.says) {
			t.Errorf("%s, password: %d", tc.limit, w.Code)
		}
	}
}

// The activator's cookies are __Host- cookies over https (Secure, Path=/, no Domain), plain
// over http, where a browser refuses Secure cookies; code-server's cookie keeps its own name.
func TestCookieNames(t *testing.T) {
	if got := CookieName("https", WakeCookie); got != "__Host-hyperbola_wake" {
		t.Errorf("https: %s", got)
	}
	if got := CookieName("http", WakeCookie); got != "hyperbola_wake" {
		t.Errorf("http: %s", got)
	}
	if CodeServerCookie != "code-server-session" {
		t.Errorf("code-server's cookie is %s", CodeServerCookie)
	}
	u := newUnit(t, nil)
	token := SignLink(testSecret, asleepID, u.now.Add(time.Hour))
	w := u.do("GET", host(asleepID), "/?"+LinkParam+"="+url.QueryEscape(token), nil)
	for _, c := range w.Result().Cookies() {
		if !strings.HasPrefix(c.Name, HostCookiePrefix) || !c.Secure || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %+v is not a __Host- cookie", c)
		}
	}
	// an unprefixed wake cookie (which any host under the domain could set) is no proof over https
	u.sessions.setState(asleepID, session.StateSleeping)
	plain := &http.Cookie{Name: WakeCookie, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	if w := u.do("GET", host(asleepID), "/", nil, plain); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `type="password"`) || len(u.sessions.woken()) != 1 {
		t.Errorf("an unprefixed cookie over https: %d, woke %v", w.Code, u.sessions.woken())
	}
}

// The waking page: accessible, self-contained, works without JavaScript (meta refresh in
// <noscript>) and with it (a script allowed by the CSP nonce polls the status endpoint).
func TestWakingPage(t *testing.T) {
	u := newUnit(t, nil)
	c := &http.Cookie{Name: hostWake, Value: signCookie(testSecret, asleepID, u.now.Add(time.Hour))}
	w := u.do("GET", host(asleepID), "/", nil, c)
	body := w.Body.String()
	for _, want := range []string{
		`<html lang="en">`, `<title>Waking your workspace · Hyperbola</title>`, `role="status"`, `under a minute`,
		`<noscript><meta http-equiv="refresh" content="3"></noscript>`, `aria-current="step"`, `/.hyperbola/status`,
		`location.replace(target)`, `data-target="https://vs-code-ab12cd34.ws.test/"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the waking page lacks %s", want)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(body, `<script nonce="`+nonce[1]+`">`) || !strings.Contains(body, `<style nonce="`+nonce[1]+`">`) {
		t.Errorf("CSP %q does not allow the page's own style and script", csp)
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// nothing from anywhere else
	for _, bad := range []string{"<link", "src=", "@import", "url(", "//fonts", "cdn"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page loads something (%s)", bad)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("the page may be cached")
	}
}

func TestWakeLinkRoute(t *testing.T) {
	u := newUnit(t, nil)
	route := WakeLinkRoute(u.sessions, testSecret, func() time.Time { return u.now })
	mux := http.NewServeMux()
	var routeErr error
	mux.HandleFunc("POST /session/{uuid}/wake-link", func(w http.ResponseWriter, r *http.Request) { routeErr = route(w, r) })
	call := func(target string) (*httptest.ResponseRecorder, error) {
		routeErr = nil
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, target, nil))
		return w, routeErr
	}
	w, err := call("/session/" + asleepID + "/wake-link?ttl=2h")
	if err != nil {
		t.Fatal(err)
	}
	var res WakeLinkResponse
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	link, _ := url.Parse(res.URL)
	if !res.ExpiresAt.Equal(u.now.Add(2*time.Hour)) || link.Host != host(asleepID) || !VerifyLink(testSecret, asleepID, link.Query().Get(LinkParam), u.now) {
		t.Fatalf("wake link %+v", res)
	}
	// and the activator takes it
	if w := u.do("GET", link.Host, link.RequestURI(), nil); w.Code != http.StatusSeeOther || len(u.sessions.woken()) != 1 {
		t.Fatalf("the minted link: %d", w.Code)
	}
	if _, err := call("/session/" + asleepID + "/wake-link?ttl=48h"); session.FieldOf(err) != "ttl" {
		t.Errorf("ttl 48h: %v", err)
	}
	if _, err := call("/session/zz99zz99/wake-link"); !strings.Contains(fmt.Sprint(err), "not found") {
		t.Errorf("unknown session: %v", err)
	}
}
