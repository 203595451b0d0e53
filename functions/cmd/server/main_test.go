package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServesAtRoot builds the server and runs it the two ways it is run: as Cloud Run runs
// it (FUNCTION_TARGET=SessionAPI, PORT) and locally (no FUNCTION_TARGET). Both serve the
// API's routes at the root. Redis and the cluster point at closed ports, so /ready is a 503
// naming them while /health (liveness) answers 200, which also shows the process starts
// without its dependencies. Locally it also
// serves the entry point to workspaces (HYPERBOLA_LOCAL_INGRESS), by Ingresses or HTTPRoutes.
func TestServesAtRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	closed := freePort(t) // nothing listens here
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:%d"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, closed)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"FUNCTION_TARGET=SessionAPI", "local", "local HYPERBOLA_ROUTING=gateway"} {
		t.Run(mode, func(t *testing.T) {
			port := freePort(t)
			env := append(os.Environ(), "KUBECONFIG="+kubeconfig, "REDIS_HOST=127.0.0.1",
				fmt.Sprintf("REDIS_PORT=%d", closed), "API_KEY=k1", "FUNCTION_TARGET=", "PORT=")
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			ingress := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			local, setting, _ := strings.Cut(mode, " ")
			if local == "local" {
				env = append(env, "HYPERBOLA_LISTEN="+addr, "HYPERBOLA_LOCAL_INGRESS="+ingress,
					"HYPERBOLA_LOCAL_POD_LINK=127.0.0.1:8099") // links nothing: no cluster
				if setting != "" {
					env = append(env, setting)
				}
			} else {
				env = append(env, mode, fmt.Sprintf("PORT=%d", port))
				addr = fmt.Sprintf("127.0.0.1:%d", port) // PORT listens on 0.0.0.0
			}
			cmd := exec.Command(bin)
			cmd.Env = env
			logs, err := os.Create(filepath.Join(dir, "server-"+strings.NewReplacer("=", "-", " ", "-").Replace(mode)+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logs.Close()
			cmd.Stderr, cmd.Stdout = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Signal(os.Interrupt)
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
			})
			base := "http://" + addr
			waitUp(t, base+"/health", logs.Name())

			status, body := get(t, "GET", base+"/ready", "")
			if status != 503 || !strings.Contains(body, `"redis":"unavailable"`) || !strings.Contains(body, `"kubernetes":"unavailable"`) {
				t.Fatalf("/ready: %d %s", status, body)
			}
			if status, body := get(t, "GET", base+"/health", ""); status != 200 {
				t.Fatalf("/health (liveness) without its dependencies: %d %s", status, body)
			}
			status, body = get(t, "GET", base+"/session/create", "k1")
			if status != 405 || !strings.Contains(body, `"method_not_allowed"`) {
				t.Fatalf("GET /session/create: %d %s", status, body)
			}
			status, body = get(t, "GET", base+"/sessions", "")
			if status != 401 || !strings.Contains(body, `"unauthenticated"`) {
				t.Fatalf("GET /sessions without a key: %d %s", status, body)
			}
			// With a key, the rate limit comes next: it needs Redis and fails closed.
			status, body = get(t, "GET", base+"/session/ab12cd34/status", "k1")
			if status != 503 || !strings.Contains(body, `"unavailable"`) {
				t.Fatalf("status without Redis: %d %s", status, body)
			}
			if local == "local" {
				status, body = get(t, "POST", base+"/IdleSweep", "")
				if status != 401 {
					t.Fatalf("POST /IdleSweep without credentials: %d %s", status, body)
				}
				// the local entry point to workspaces: a host it does not serve is nginx's 404,
				// a workspace's host needs the cluster, which is down
				for host, want := range map[string]int{"example.com": 404, "vs-code-ab12cd34.preview.hyperbola.in": 503} {
					if got := statusOf(t, "http://"+ingress+"/", host); got != want {
						t.Fatalf("local ingress, Host %s: %d, want %d", host, got, want)
					}
				}
			}
		})
	}
}

func get(t *testing.T, method, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, url, b)
	}
	return resp.StatusCode, string(b)
}

// statusOf is the status of GET url with Host host.
func statusOf(t *testing.T, url, host string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitUp(t *testing.T, url, logs string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logs)
	t.Fatalf("the server did not start:\n%s", b)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
