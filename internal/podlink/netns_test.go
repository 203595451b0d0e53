package podlink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// podNetns starts a process in a network namespace of its own that looks like a pod's (lo up,
// ip on an interface), for as long as the test runs, and returns its pid. Needs root, unshare
// and ip: the test is skipped without them.
func podNetns(t *testing.T, ip string) int {
	pid, _ := podNetnsStop(t, ip)
	return pid
}

// podNetnsStop is podNetns that also returns what ends the namespace (its only process) early.
func podNetnsStop(t *testing.T, ip string) (int, func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("joining network namespaces needs root")
	}
	for _, bin := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("no %s: %v", bin, err)
		}
	}
	cmd := exec.Command("unshare", "--net", "sh", "-c",
		"ip link set lo up && ip addr add "+ip+"/32 dev lo && echo ready && exec sleep 600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("the namespace's process did not get ready: %q %v", line, err)
	}
	return cmd.Process.Pid, stop
}

// dialIn GETs http://addr/path from inside the network namespace at path (what a process in
// the pod does). The socket is made on the namespace's thread itself (an http.Client would
// dial from a goroutine of its own, in this host's namespace); reading and writing it may
// then happen anywhere.
func dialIn(t *testing.T, nsPath, addr, path string) (string, error) {
	t.Helper()
	var c net.Conn
	if err := inNetns(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// A namespace is found by its address, both through a runtime's directory of namespace files
// and through /proc, and the host's own is not taken for it.
func TestFindNetnsByAddress(t *testing.T) {
	pid := podNetns(t, "10.250.0.7")
	procPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	want, err := statNetns(procPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(procPath, filepath.Join(dir, "cni-1")); err != nil {
		t.Fatal(err)
	}
	// a leftover file whose mount is gone is no namespace: skipped
	if err := os.WriteFile(filepath.Join(dir, "cni-stale"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*hostNetns{"dir": newHostNetns(dir), "proc": newHostNetns("")} {
		ns, err := h.find(netip.MustParseAddr("10.250.0.7"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ns.id != want || !h.current(ns) {
			t.Errorf("%s: found %+v, want the namespace %+v", name, ns, want)
		}
		if _, err := h.find(netip.MustParseAddr("10.250.0.8")); !errors.Is(err, errNoNetns) {
			t.Errorf("%s: an address nobody has: %v", name, err)
		}
	}
}

// The whole link in a real network namespace: the listener is on the namespace's loopback
// (not this host's), a process there reaches the host's server through it, and when the pod
// goes the listener closes.
func TestLinkInNetns(t *testing.T) {
	pid := podNetns(t, "10.250.0.9")
	nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	seen := make(chan string, 10)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.Path
		fmt.Fprint(w, "hello from the host")
	}))
	defer target.Close()
	port := freePort(t) // free on this host: so a dial here could only succeed through a leak
	listen := "127.0.0.1:" + strconv.Itoa(port)

	client := fake.NewClientset(runningPod("a", "10.250.0.9"))
	l, err := New(client, Options{Namespace: "ws", Listen: listen, Target: strings.TrimPrefix(target.URL, "http://"),
		Resync: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	p := waitPods(t, l, "a=10.250.0.9")[0]
	if id, _ := statNetns(p.Netns); id != mustStat(t, nsPath) {
		t.Fatalf("linked in %s, not the pod's namespace", p.Netns)
	}

	body, err := dialIn(t, nsPath, listen, "/hello")
	if err != nil || body != "hello from the host" {
		t.Fatalf("from the pod: %q %v", body, err)
	}
	if got := <-seen; got != "/hello" {
		t.Fatalf("the host's server saw %q", got)
	}
	if !refused(listen) {
		t.Fatalf("%s answers on this host's loopback: the listener is not in the pod's namespace", listen)
	}

	if err := client.CoreV1().Pods("ws").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, l)
	if _, err := dialIn(t, nsPath, listen, "/again"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("after the pod went, a dial in its namespace: %v, want refused", err)
	}
}

func mustStat(t *testing.T, path string) nsID {
	t.Helper()
	id, err := statNetns(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
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

// A pod whose namespace is replaced at the same address (its sandbox made again) gets a
// listener in the new one: the old one's file no longer refers to it.
func TestLinkFollowsNewNetns(t *testing.T) {
	_, stopOld := podNetnsStop(t, "10.250.0.11")
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the host")
	}))
	defer target.Close()
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	l, err := New(fake.NewClientset(runningPod("a", "10.250.0.11")), Options{Namespace: "ws", Listen: listen,
		Target: strings.TrimPrefix(target.URL, "http://"), Resync: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	old := waitPods(t, l, "a=10.250.0.11")[0]
	stopOld()
	pid := podNetns(t, "10.250.0.11")
	nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pods := l.Pods(); len(pods) == 1 && pods[0].Netns != old.Netns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still linked in the old namespace: %+v", l.Pods())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body, err := dialIn(t, nsPath, listen, "/"); err != nil || body != "hello from the host" {
		t.Fatalf("from the new namespace: %q %v", body, err)
	}
}
