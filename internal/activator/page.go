package activator

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
)

// page is one HTML answer of the activator. Every page is self-contained: inline CSS and, on
// the waking page, inline JavaScript, both allowed by a per-answer nonce in the
// Content-Security-Policy; nothing is loaded from anywhere else.
type page struct {
	Status  int
	Title   string // the document title (before " · Hyperbola")
	Heading string
	Lead    string
	// Step is where the workspace is, for the progress list and the live region: "asleep",
	// "starting" or "ready"; "" shows no progress.
	Step         string
	StatusText   string // the live region's text
	Note         string
	NoscriptNote string // shown only without JavaScript
	// Form asks for the IDE password; Return is where to go after it, Error why it is asked
	// again.
	Form   bool
	Return string
	Error  string
	// Link is offered as a plain link (the workspace, when it is ready).
	Link, LinkText string
	// Poll turns on the script that polls the status endpoint and opens Target when ready.
	Poll   bool
	Target string
	PollMS int
	// Refresh reloads the page after that many seconds: inside <noscript> when the page
	// polls (the script does better), always otherwise.
	Refresh    int
	RetryAfter int
	// Limit names the deployment limit that stopped a wake (session.Limit*), for scripts
	// and tests (data-limit); the text says it in words.
	Limit string
	Nonce string
}

// The live region's texts (also in the script).
const (
	textAsleep   = "This workspace is asleep."
	textStarting = "Starting your workspace. This usually takes under a minute."
	textSlow     = "Still starting. This is taking longer than usual; you can keep this page open."
	textReady    = "Your workspace is ready. Opening it now."
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
{{- if .Refresh}}{{if .Poll}}
<noscript><meta http-equiv="refresh" content="{{.Refresh}}"></noscript>
{{- else}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}{{end}}
<title>{{.Title}} · Hyperbola</title>
<style nonce="{{.Nonce}}">
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#4d5561;--bg:#f6f7f9;--card:#fff;--line:#d3d7de;--accent:#1f5fbf;--ok:#1a7f37;--bad:#b42318}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaee;--muted:#b3bac5;--bg:#111418;--card:#1b1f25;--line:#39404a;--accent:#7fb0ff;--ok:#5cc47a;--bad:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:1rem}
main{background:var(--card);border:1px solid var(--line);border-radius:.75rem;max-width:34rem;width:100%;padding:2rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}
p{margin:.75rem 0}
.note{color:var(--muted);font-size:.925rem}
ol.steps{list-style:none;display:flex;gap:.5rem;padding:0;margin:1.5rem 0 1rem}
ol.steps li{flex:1;border-top:.3rem solid var(--line);padding-top:.4rem;color:var(--muted);font-size:.925rem}
ol.steps li.done{border-color:var(--ok);color:var(--fg)}
ol.steps li[aria-current]{border-color:var(--accent);color:var(--fg);font-weight:600}
@media (prefers-reduced-motion:no-preference){ol.steps li[aria-current]{animation:pulse 1.6s ease-in-out infinite}}
@keyframes pulse{50%{border-color:var(--line)}}
#status{font-weight:600}
label{display:block;font-weight:600;margin-top:1rem}
input[type=password]{display:block;width:100%;font:inherit;padding:.6rem .7rem;margin:.35rem 0;border:1px solid var(--line);border-radius:.4rem;background:var(--bg);color:var(--fg)}
input[aria-invalid=true]{border-color:var(--bad)}
button{font:inherit;font-weight:600;padding:.6rem 1rem;margin-top:.5rem;border:0;border-radius:.4rem;background:var(--accent);color:#fff;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#0b0d10}}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.error{color:var(--bad);font-weight:600}
</style>
</head>
<body>
<main id="main"{{if .Limit}} data-limit="{{.Limit}}"{{end}} data-step="{{.Step}}" data-target="{{.Target}}" data-interval="{{.PollMS}}">
<h1>{{.Heading}}</h1>
<p>{{.Lead}}</p>
{{- if .Step}}
<ol class="steps" aria-label="Progress">
<li data-stage="asleep"{{if eq .Step "asleep"}} aria-current="step"{{else}} class="done"{{end}}>Asleep</li>
<li data-stage="starting"{{if eq .Step "starting"}} aria-current="step"{{else if eq .Step "ready"}} class="done"{{end}}>Starting</li>
<li data-stage="ready"{{if eq .Step "ready"}} aria-current="step"{{end}}>Ready</li>
</ol>
{{- end}}
<p id="status" role="status" aria-live="polite">{{.StatusText}}</p>
{{- if .Form}}
<form method="post" action="/.hyperbola/wake">
<input type="hidden" name="return" value="{{.Return}}">
<label for="password">Workspace password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Error}} aria-invalid="true" aria-describedby="error"{{end}}>
{{- if .Error}}
<p id="error" class="error">{{.Error}}</p>
{{- end}}
<button type="submit">Wake the workspace</button>
</form>
{{- end}}
{{- if .Link}}
<p><a href="{{.Link}}">{{.LinkText}}</a></p>
{{- end}}
{{- if .Note}}
<p class="note">{{.Note}}</p>
{{- end}}
{{- if .NoscriptNote}}
<noscript><p class="note">{{.NoscriptNote}}</p></noscript>
{{- end}}
</main>
{{- if .Poll}}
<script nonce="{{.Nonce}}">
(function () {
  "use strict";
  var main = document.getElementById("main");
  var status = document.getElementById("status");
  var target = main.getAttribute("data-target");
  var every = parseInt(main.getAttribute("data-interval"), 10) || 1000;
  var started = Date.now();
  var texts = {starting: "` + textStarting + `", slow: "` + textSlow + `", ready: "` + textReady + `"};
  function show(stage, text) {
    var items = main.querySelectorAll("[data-stage]");
    var before = true;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      if (it.getAttribute("data-stage") === stage) {
        it.setAttribute("aria-current", "step");
        it.className = "";
        before = false;
      } else {
        it.removeAttribute("aria-current");
        it.className = before ? "done" : "";
      }
    }
    main.setAttribute("data-step", stage);
    if (status.textContent !== text) { status.textContent = text; }
  }
  function later() { setTimeout(function () { location.reload(); }, 3000); }
  function poll() {
    fetch("/.hyperbola/status", {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (s) {
        if (s.ready) {
          show("ready", texts.ready);
          location.replace(target);
          return;
        }
        if (s.state !== "waking" && s.state !== "creating") { location.reload(); return; }
        show("starting", Date.now() - started > 90000 ? texts.slow : texts.starting);
        setTimeout(poll, every);
      })
      .catch(later);
  }
  poll(); // the server holds a poll until the workspace runs: no need to wait before asking
})();
</script>
{{- end}}
</body>
</html>
`))

// newNonce returns a fresh CSP nonce.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])                            // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:]) // CSP allows the URL-safe alphabet; HTML needs no escape for it
}

// write renders p with its status, headers and a CSP that allows only its own inline style
// and script, requests to its own origin and forms posted to it.
func (p *page) write(w http.ResponseWriter, r *http.Request) error {
	p.Nonce = newNonce()
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+p.Nonce+"'; script-src 'nonce-"+p.Nonce+
		"'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(buf.Bytes())
	return err
}
