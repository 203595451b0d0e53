package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kube is a local control plane started by scripts/localkube/up.sh.
type Kube struct {
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	// Bin holds the built binaries (kubectl among them).
	Bin     string
	dir     string
	scripts string
}

// BuildKube builds the control plane into its cache (a no-op when built) and returns the
// cache directory. A cold build takes about 7 minutes on 2 cores.
func BuildKube(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts/localkube/build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/localkube/build.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// StartKube builds (when needed) and starts a control plane with nodes fake nodes.
func StartKube(ctx context.Context, nodes int) (*Kube, error) {
	if nodes <= 0 {
		nodes = 1
	}
	cache, err := BuildKube(ctx)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	scripts := filepath.Join(root, "scripts/localkube")
	dir, err := os.MkdirTemp("", "hyperbola-kube-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	start := time.Now()
	up := exec.CommandContext(ctx, filepath.Join(scripts, "up.sh"), dir)
	up.Env = append(os.Environ(), "LOCALKUBE_ROOT="+cache, "K8SENV_NODES="+strconv.Itoa(nodes))
	var stderr bytes.Buffer
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/localkube/up.sh: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kc := lines[len(lines)-1]
	k := &Kube{Kubeconfig: kc, Bin: filepath.Join(cache, "bin"), dir: dir, scripts: scripts}
	// A watchdog stops the cluster if this process dies without calling Stop (a test binary
	// killed by -timeout, say), so no control plane outlives its tests.
	watch := exec.Command("bash", "-c",
		`while kill -0 "$1" 2>/dev/null; do sleep 1; done; [ -d "$2" ] && "$3" "$2" >/dev/null 2>&1`,
		"watchdog", strconv.Itoa(os.Getpid()), dir, filepath.Join(scripts, "down.sh"))
	watch.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := watch.Start(); err == nil {
		_ = watch.Process.Release()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		k.Stop()
		return nil, fmt.Errorf("reading %s: %w", kc, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000 // a test cluster: no client-side throttling to speak of
	k.Config = cfg
	if k.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		k.Stop()
		return nil, fmt.Errorf("clientset: %w", err)
	}
	logger().Info("local cluster up", "kubeconfig", kc, "nodes", nodes, "took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// Stop stops the control plane and removes its directory.
func (k *Kube) Stop() {
	if k == nil {
		return
	}
	cmd := exec.Command(filepath.Join(k.scripts, "down.sh"), k.dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	_ = cmd.Run()
}

// CreateNamespace creates a namespace and waits for its default ServiceAccount (pods in a
// brand-new namespace need it).
func (k *Kube) CreateNamespace(ctx context.Context, name string) error {
	_, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return waitFor(ctx, "default ServiceAccount in "+name, 30*time.Second, nil, func() error {
		_, err := k.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Namespace returns the package's cluster and a fresh namespace for t, deleted (without
// waiting) when t ends.
func (e *Env) Namespace(t testing.TB) (*Kube, string) {
	t.Helper()
	need(t, e, "local cluster", e != nil && e.Kube != nil)
	ns := UniqueName(t.Name())
	if len(ns) > 63 {
		ns = UniqueName(t.Name()[:40])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Kube.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return e.Kube, ns
}

// CreateBackupPVC creates the shared backup volume claim in ns (what infra/ provisions in a
// real cluster) and returns its name.
func (k *Kube) CreateBackupPVC(ctx context.Context, ns, name string) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: mustQuantity("10Gi"),
			}},
		},
	}
	_, err := k.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating backup PVC %s/%s: %w", ns, name, err)
	}
	return nil
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
