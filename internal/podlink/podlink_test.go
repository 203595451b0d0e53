package podlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeNetns stands in for the host's namespaces: each known address is a "namespace" whose
// listeners are on this host's loopback at a free port (what the test dials), and a namespace
// can be replaced (a new sandbox) to see the link notice.
type fakeNetns struct {
	mu    sync.Mutex
	gen   map[netip.Addr]int // the namespace's generation per address; absent = not on this host
	addrs map[string]string  // namespace path -> the listener's real address
}

func newFakeNetns(ips ...string) *fakeNetns {
	f := &fakeNetns{gen: map[netip.Addr]int{}, addrs: map[string]string{}}
	for _, ip := range ips {
		f.gen[netip.MustParseAddr(ip)] = 1
	}
	return f
}

func (f *fakeNetns) path(ip netip.Addr, gen int) string { return fmt.Sprintf("ns-%s-%d", ip, gen) }

func (f *fakeNetns) find(ip netip.Addr) (netns, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.gen[ip]
	if !ok {
		return netns{}, errNoNetns
	}
	return netns{path: f.path(ip, g), id: nsID{ino: uint64(g)}}, nil
}

func (f *fakeNetns) current(ns netns) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ip, g := range f.gen {
		if f.path(ip, g) == ns.path {
			return true
		}
	}
	return false
}

func (f *fakeNetns) listen(ns netns, addr string) (net.Listener, error) {
	if err := loopback("listen", addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.addrs[ns.path] = ln.Addr().String()
	f.mu.Unlock()
	return ln, nil
}

func (f *fakeNetns) replace(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen[netip.MustParseAddr(ip)]++
}

// addr returns the real address of the listener opened in the pod's namespace.
func (f *fakeNetns) addr(p Pod) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[p.Netns]
}

func runningPod(name, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ws", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "ws"}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
}

// startLink runs a Link on a fake cluster and a fake host until the test ends.
func startLink(t *testing.T, client kubernetes.Interface, ns namespaces, target string) *Link {
	t.Helper()
	l, err := New(client, Options{Namespace: "ws", Selector: "app=ws", Listen: "127.0.0.1:8099", Target: target,
		Resync: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.ns = ns
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return l
}

// waitPods waits until the linked pods' names and addresses are want ("name=ip" each).
func waitPods(t *testing.T, l *Link, want ...string) []Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pods := l.Pods()
		got := make([]string, len(pods))
		for i, p := range pods {
			got[i] = p.Name + "=" + p.IP
		}
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return pods
		}
		if time.Now().After(deadline) {
			t.Fatalf("linked pods %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, addr, path string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

// The link follows the pods: a running pod of the selector gets a listener that reaches the
// target; one on another node (no namespace here), a pending one or another label's do not;
// a new address or a new namespace moves the listener; a deleted pod's listener closes.
func TestLinkFollowsPods(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the host "+r.URL.Path)
	}))
	defer target.Close()
	pending := runningPod("pending", "")
	pending.Status.Phase = corev1.PodPending
	other := runningPod("other", "10.88.0.9")
	other.Labels = map[string]string{"app": "other"}
	client := fake.NewClientset(runningPod("a", "10.88.0.2"), runningPod("elsewhere", "10.244.0.5"), pending, other)
	hostNS := newFakeNetns("10.88.0.2", "10.88.0.3", "10.88.0.4", "10.88.0.9")
	l := startLink(t, client, hostNS, strings.TrimPrefix(target.URL, "http://"))

	a := waitPods(t, l, "a=10.88.0.2")[0]
	if got := get(t, hostNS.addr(a), "/hello"); got != "hello from the host /hello" {
		t.Fatalf("through the link: %q", got)
	}

	ctx := context.Background()
	b := runningPod("b", "10.88.0.3")
	if _, err := client.CoreV1().Pods("ws").Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, l, "a=10.88.0.2", "b=10.88.0.3")
	if got := get(t, hostNS.addr(pods[1]), "/b"); got != "hello from the host /b" {
		t.Fatalf("through b's link: %q", got)
	}

	// a new address: the old listener closes, a new one opens
	b.Status.PodIP = "10.88.0.4"
	if _, err := client.CoreV1().Pods("ws").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	moved := waitPods(t, l, "a=10.88.0.2", "b=10.88.0.4")[1]
	waitRefused(t, hostNS.addr(pods[1]))
	if got := get(t, hostNS.addr(moved), "/b2"); got != "hello from the host /b2" {
		t.Fatalf("through b's new link: %q", got)
	}

	// a new namespace at the same address (a new sandbox): the listener moves there
	hostNS.replace("10.88.0.2")
	deadline := time.Now().Add(10 * time.Second)
	for l.Pods()[0].Netns == a.Netns {
		if time.Now().After(deadline) {
			t.Fatal("the listener stayed in the replaced namespace")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitRefused(t, hostNS.addr(a))

	// deleted: closed
	if err := client.CoreV1().Pods("ws").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, l, "a=10.88.0.2")
	waitRefused(t, hostNS.addr(moved))
}

func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !refused(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Run returns when its context ends, with every listener and open connection closed.
func TestRunClosesEverything(t *testing.T) {
	gotConn := make(chan net.Conn, 1)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		if c, err := target.Accept(); err == nil {
			gotConn <- c
		}
	}()
	hostNS := newFakeNetns("10.88.0.2")
	l, err := New(fake.NewClientset(runningPod("a", "10.88.0.2")), Options{Namespace: "ws", Listen: "127.0.0.1:8099",
		Target: target.Addr().String(), Resync: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.ns = hostNS
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	p := waitPods(t, l, "a=10.88.0.2")[0]
	c, err := net.Dial("tcp", hostNS.addr(p))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := <-gotConn // the relay is up
	defer tc.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if len(l.Pods()) != 0 || !refused(hostNS.addr(p)) {
		t.Fatalf("after Run: pods %v, listener refused %v", l.Pods(), refused(hostNS.addr(p)))
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("the relayed connection is still open: %v", err)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// New refuses addresses off loopback: the link opens and reaches loopback only.
func TestNewWantsLoopback(t *testing.T) {
	for _, tc := range []struct{ listen, target, want string }{
		{"0.0.0.0:8099", "127.0.0.1:8080", "listen"},
		{"127.0.0.1:8099", "10.0.0.1:8080", "target"},
		{"127.0.0.1", "127.0.0.1:8080", "listen"},
		{"127.0.0.1:0", "127.0.0.1:8080", "listen"},
		{"localhost:8099", "127.0.0.1:8080", "listen"},
		{"[::1]:8099", "127.0.0.1:8080", ""},
	} {
		_, err := New(fake.NewClientset(), Options{Namespace: "ws", Listen: tc.listen, Target: tc.target})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s -> %s: %v", tc.listen, tc.target, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: err %v, want one naming %s", tc.listen, tc.target, err, tc.want)
		}
	}
}
