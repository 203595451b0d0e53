// Package podlink is a local-only reverse port-forward: it gives each pod of a namespace that
// runs on this host (the local cluster's real node) a listener on 127.0.0.1:<port> inside the
// pod's own network namespace, and relays every connection to an address on this host's
// loopback. Locally the control plane listens on 127.0.0.1 only and pods may not send
// traffic out of their range, so this is how a workspace reaches it (the IDE extension's
// HYPERBOLA_ACTIVITY_URL = http://127.0.0.1:<port>); in production pods reach the public URL.
//
// Each pod's namespace has its own loopback, so one port serves every pod. A pod's namespace
// is found by its address: the runtime's namespace files (containerd's
// netns_mounts_under_state_dir) or, without them, every process's /proc/<pid>/ns/net. Joining
// a namespace needs root (CAP_SYS_ADMIN).
package podlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// DefaultResync is how often pods not linked yet are tried again and linked pods' namespaces
// are checked, besides every change the watch reports.
const DefaultResync = 2 * time.Second

// dialTimeout bounds a dial to Target: it is on this host's loopback.
const dialTimeout = 5 * time.Second

// Options says which pods get a listener, where, and where their connections go.
type Options struct {
	// Namespace and Selector (a label selector; "" = all) pick the pods.
	Namespace string
	Selector  string
	// Listen is the address of the listener inside each pod, a loopback address
	// (127.0.0.1:8099): the pod's own loopback.
	Listen string
	// Target is where connections go, on this host's loopback (127.0.0.1:8080).
	Target string
	// NetnsDir holds the runtime's network namespace files; "" = search every process's.
	NetnsDir string
	// Resync defaults to DefaultResync.
	Resync time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Pod is a pod with a listener.
type Pod struct {
	Namespace, Name string
	UID             types.UID
	IP              string
	// Netns is the file of the pod's network namespace the listener was opened in.
	Netns string
}

// namespaces is what Link needs of the host's network namespaces (a fake in tests).
type namespaces interface {
	find(ip netip.Addr) (netns, error)
	current(ns netns) bool
	listen(ns netns, addr string) (net.Listener, error)
}

// Link keeps a listener in every running pod that Options picks.
type Link struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger
	ns     namespaces

	mu     sync.Mutex
	linked map[types.UID]*podListener
	failed map[types.UID]string // the last failure logged per pod, so a retry that fails alike stays quiet
	wg     sync.WaitGroup       // accept loops and relays
}

// podListener is one pod's listener and the connections it accepted.
type podListener struct {
	pod    Pod
	ns     netns
	ln     net.Listener
	cancel context.CancelFunc // ends its relays
}

// New checks opts and returns a Link; Run runs it.
func New(client kubernetes.Interface, opts Options) (*Link, error) {
	if err := loopback("listen", opts.Listen); err != nil {
		return nil, err
	}
	if err := loopback("target", opts.Target); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		return nil, errors.New("podlink: no namespace")
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Link{
		client: client, opts: opts, ns: newHostNetns(opts.NetnsDir),
		log:    log.With("component", "podlink", "listen", opts.Listen, "target", opts.Target),
		linked: map[types.UID]*podListener{}, failed: map[types.UID]string{},
	}, nil
}

// loopback checks that addr is a loopback IP and a port: this link opens nothing else and
// sends nowhere else.
func loopback(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("podlink %s %q: want ip:port: %w", name, addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || port == "" || port == "0" {
		return fmt.Errorf("podlink %s %q: want a loopback ip and a port", name, addr)
	}
	return nil
}

// Run follows the pods until ctx ends, then closes every listener and connection and returns
// once they are closed.
func (l *Link) Run(ctx context.Context) error {
	pods := l.client.CoreV1().Pods(l.opts.Namespace)
	selector := func(o *metav1.ListOptions) { o.LabelSelector = l.opts.Selector }
	kick := make(chan struct{}, 1)
	changed := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		// the clientset says whether it serves watch-list streams (a fake one does not)
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				selector(&o)
				return pods.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				selector(&o)
				return pods.Watch(ctx, o)
			},
		}, l.client),
		ObjectType: &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, o any) { changed(o) },
			DeleteFunc: changed,
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		informer.RunWithContext(ctx)
	}()
	l.log.Info("linking pods to this host", "namespace", l.opts.Namespace, "selector", l.opts.Selector, "netns_dir", l.opts.NetnsDir)
	tick := time.NewTicker(l.opts.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			l.closeAll()
			<-done
			return nil
		case <-kick:
		case <-tick.C:
		}
		if informer.HasSynced() {
			l.reconcile(ctx, store.List())
		}
	}
}

// Pods returns the pods that have a listener now, by name.
func (l *Link) Pods() []Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Pod, 0, len(l.linked))
	for _, pl := range l.linked {
		out = append(out, pl.pod)
	}
	slices.SortFunc(out, func(a, b Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// wanted returns the pod's address when it should have a listener: it runs (its network is
// up) and is not being deleted. Readiness is not asked for: a pod that is not ready yet, or
// for a while, may still call, and its listener costs nothing.
func wanted(p *corev1.Pod) (netip.Addr, bool) {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || p.Spec.HostNetwork {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	return ip, err == nil
}

// reconcile closes the listeners of pods that went, changed address or namespace, and opens
// one in each wanted pod that has none.
func (l *Link) reconcile(ctx context.Context, objs []any) {
	want := map[types.UID]*corev1.Pod{}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			if _, ok := wanted(p); ok {
				want[p.UID] = p
			}
		}
	}
	l.mu.Lock()
	var stale []*podListener
	for uid, pl := range l.linked {
		p, ok := want[uid]
		if !ok || p.Status.PodIP != pl.pod.IP || !l.ns.current(pl.ns) {
			stale = append(stale, pl)
			delete(l.linked, uid)
		}
	}
	for uid := range l.failed {
		if _, ok := want[uid]; !ok {
			delete(l.failed, uid)
		}
	}
	l.mu.Unlock()
	for _, pl := range stale {
		l.close(pl, "the pod is gone or changed")
	}
	for uid, p := range want {
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		_, ok := l.linked[uid]
		l.mu.Unlock()
		if !ok {
			l.open(ctx, p)
		}
	}
}

// open finds p's namespace and opens its listener there; a failure is logged (once while it
// stays the same) and tried again at the next change or resync.
func (l *Link) open(ctx context.Context, p *corev1.Pod) {
	ip, _ := wanted(p)
	pod := Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, IP: p.Status.PodIP}
	ns, err := l.ns.find(ip)
	var ln net.Listener
	if err == nil {
		ln, err = l.ns.listen(ns, l.opts.Listen)
	}
	if err != nil {
		l.mu.Lock()
		last := l.failed[p.UID]
		l.failed[p.UID] = err.Error()
		l.mu.Unlock()
		if last != err.Error() {
			level := slog.LevelWarn
			if errors.Is(err, errNoNetns) {
				level = slog.LevelInfo // not on this host's node, or its network is not up yet
			}
			l.log.Log(ctx, level, "no listener in the pod yet", "pod", pod.Name, "ip", pod.IP, "err", err)
		}
		return
	}
	pod.Netns = ns.path
	rctx, cancel := context.WithCancel(context.Background())
	pl := &podListener{pod: pod, ns: ns, ln: ln, cancel: cancel}
	l.mu.Lock()
	l.linked[p.UID] = pl
	delete(l.failed, p.UID)
	l.mu.Unlock()
	l.log.Info("pod linked", "pod", pod.Name, "ip", pod.IP, "netns", ns.path)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.serve(rctx, pl)
	}()
}

// close closes pl's listener and its connections.
func (l *Link) close(pl *podListener, why string) {
	_ = pl.ln.Close()
	pl.cancel()
	l.log.Info("pod unlinked", "pod", pl.pod.Name, "ip", pl.pod.IP, "why", why)
}

// closeAll closes every listener and waits for their accept loops and relays to end.
func (l *Link) closeAll() {
	l.mu.Lock()
	all := l.linked
	l.linked = map[types.UID]*podListener{}
	l.mu.Unlock()
	for _, pl := range all {
		l.close(pl, "stopping")
	}
	l.wg.Wait()
}
