package podlink_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/podlink"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

// Only TestRealNodePodReachesHost starts a cluster (with the machine's real node, waiting for
// its turn); the unit tests start nothing.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{RealNodeOnDemand: true})
}

// linkPort is the listener's port inside the pod: any port works, each pod has its own loopback.
const linkPort = 8099

// A real pod on the real node reaches a server on this host's loopback through
// http://127.0.0.1:<port> inside the pod, as a workspace reaches make run's control plane; the
// server sees the request; once the pod is deleted its listener is closed.
func TestRealNodePodReachesHost(t *testing.T) {
	k, ns := env.RealNodeNamespace(t)
	rn := k.RealNode
	if rn.NetnsDir == "" {
		t.Fatal("the real node's env names no REALNODE_NETNS_DIR")
	}
	var mu sync.Mutex
	var seen []string
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, "hello from the host")
	}))
	defer host.Close()

	listen := fmt.Sprintf("127.0.0.1:%d", linkPort)
	link, err := podlink.New(k.Client, podlink.Options{Namespace: ns, Selector: "app=podlink-test", Listen: listen,
		Target: strings.TrimPrefix(host.URL, "http://"), NetnsDir: rn.NetnsDir, Resync: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// the pod asks until the link is there (busybox: `timeout N wget`, its -T crashes)
	script := fmt.Sprintf(`for i in $(seq 120); do
  if timeout 5 wget -q -O - http://%s/hello; then echo; echo fetched; break; fi
  sleep 0.5
done
exec sleep 3600`, listen)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Labels: map[string]string{"app": "podlink-test"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "client", Image: rn.BackupImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", script},
			}},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  new(bool),
		},
	}
	rn.Place(&pod.Spec)
	start := time.Now()
	if _, err := k.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var linked podlink.Pod
	wait(t, 3*time.Minute, "the pod linked", func() bool {
		for _, p := range link.Pods() {
			if p.Name == "client" {
				linked = p
				return true
			}
		}
		return false
	})
	t.Logf("linked after %v: %+v", time.Since(start).Round(time.Millisecond), linked)
	// hold the pod's namespace open, to look inside it after the pod is gone
	nsFile, err := os.Open(linked.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsFile.Close()

	var logs string
	wait(t, 2*time.Minute, "the pod's fetch", func() bool {
		b, err := k.Client.CoreV1().Pods(ns).GetLogs("client", &corev1.PodLogOptions{}).DoRaw(ctx)
		logs = string(b)
		return err == nil && strings.Contains(logs, "fetched")
	})
	t.Logf("fetched after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs, "hello from the host") {
		t.Fatalf("the pod printed %q, want the host's answer", logs)
	}
	mu.Lock()
	got := strings.Join(seen, ",")
	mu.Unlock()
	if !strings.Contains(got, "GET /hello") {
		t.Fatalf("the host's server saw %q", got)
	}
	if err := dialIn(nsFile, listen); err != nil {
		t.Fatalf("inside the pod's namespace, %s: %v", listen, err)
	}

	if err := k.Client.CoreV1().Pods(ns).Delete(ctx, "client", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	wait(t, 2*time.Minute, "the pod unlinked", func() bool { return len(link.Pods()) == 0 })
	if err := dialIn(nsFile, listen); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after the pod is deleted, %s in its namespace: %v, want connection refused", listen, err)
	}
}

// dialIn dials addr from inside the network namespace ns (on a thread of its own, which ends
// with the goroutine: it is never unlocked).
func dialIn(ns *os.File, addr string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			_ = c.Close()
		}
		errc <- err
	}()
	return <-errc
}

func wait(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
