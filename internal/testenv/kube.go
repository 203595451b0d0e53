package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
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
	Bin string
	// RealNode is the real node started beside the fake ones (KubeOptions.RealNode), else nil.
	RealNode *RealNode
	dir      string
	scripts  string
}

// KubeOptions says what StartKubeWith starts.
type KubeOptions struct {
	// Nodes is the number of kwok's fake nodes (default 1; a node admits 110 pods).
	Nodes int
	// RealNode adds one real node (containerd, runc, bridge CNI, kubelet) and
	// local-path-provisioner: see RealNode.
	RealNode bool
}

// RealNode is the local cluster's one real node (scripts/localkube/up.sh with
// K8SENV_REALNODE=1): real containers from images built by images/build-local.sh, on real
// volumes under VolumesDir. It is labelled and tainted hyperbola.dev/node=real (NoSchedule), so a
// pod runs there only when it selects and tolerates it (Place); every other pod goes to the
// fake nodes. Pods get an address in PodCIDR that this host reaches directly (no Services, DNS,
// NetworkPolicy enforcement or traffic out of PodCIDR). Images are imported, never pulled: use
// imagePullPolicy Never or IfNotPresent.
type RealNode struct {
	// NodeName is the Node's name ("localhost").
	NodeName string
	// WorkspaceImage is real code-server (e.g. localhost/hyperbola-workspace:4.100.3): runs as
	// 1000:1000, entrypoint node .../code-server/out/node/entry.js, no default args.
	WorkspaceImage string
	// BackupImage has busybox's sh and applets, zip and unzip; runs as 1000:1000
	// (localhost/hyperbola-backup:1).
	BackupImage string
	// StorageClass provisions volumes on the real node (local-path, WaitForFirstConsumer;
	// not the cluster's default class, which stays kwok's fake kwok-volume).
	StorageClass string
	// VolumesDir is the host directory that holds the local-path volumes, one directory per
	// volume (VolumeHostPath finds a claim's), so tests can read what pods wrote.
	VolumesDir string
	// PodCIDR is the range the node's pods get their addresses from (10.88.0.0/16).
	PodCIDR string
	// ContainerdSock is the node's containerd socket (ctr -a SOCK -n k8s.io ...).
	ContainerdSock string
	// NetnsDir holds the network namespace of each of the node's pods, a file each (containerd's
	// netns_mounts_under_state_dir): what joins a pod's network from this host
	// (internal/podlink). Needs root.
	NetnsDir string
}

// RealNodeLabel is the label and taint key (value "real") of the real node.
const RealNodeLabel = "hyperbola.dev/node"

// NodeSelector selects the real node.
func (r *RealNode) NodeSelector() map[string]string {
	return map[string]string{RealNodeLabel: "real"}
}

// Toleration tolerates the real node's taint.
func (r *RealNode) Toleration() corev1.Toleration {
	return corev1.Toleration{Key: RealNodeLabel, Operator: corev1.TolerationOpEqual, Value: "real", Effect: corev1.TaintEffectNoSchedule}
}

// Place makes spec's pod run on the real node: it adds the node selector and the toleration.
func (r *RealNode) Place(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	maps.Copy(spec.NodeSelector, r.NodeSelector())
	spec.Tolerations = append(spec.Tolerations, r.Toleration())
}

// BuildKube builds the control plane into its cache (a no-op when built) and returns the
// cache directory. A cold build takes about 7 minutes on 2 cores.
func BuildKube(ctx context.Context) (string, error) {
	return build(ctx, "scripts/localkube/build.sh")
}

// BuildNode builds what the real node needs (containerd, runc, CNI plugins,
// local-path-provisioner and the images) into its cache (a no-op when built) and returns the
// node cache directory. A cold build takes 10-20 minutes on 2 cores.
func BuildNode(ctx context.Context) (string, error) {
	return build(ctx, "scripts/localkube/build-node.sh")
}

// build runs one of the repository's build scripts, which print their cache directory as
// their last line.
func build(ctx context.Context, script string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, script))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// StartKube builds (when needed) and starts a control plane with nodes fake nodes.
func StartKube(ctx context.Context, nodes int) (*Kube, error) {
	return StartKubeWith(ctx, KubeOptions{Nodes: nodes})
}

// StartKubeWith builds (when needed) and starts a control plane as opts says. With
// opts.RealNode it may first wait for another cluster's real node to stop (one per machine,
// up to K8SENV_REALNODE_WAIT seconds, default 1800).
func StartKubeWith(ctx context.Context, opts KubeOptions) (*Kube, error) {
	nodes := opts.Nodes
	if nodes <= 0 {
		nodes = 1
	}
	cache, err := BuildKube(ctx)
	if err != nil {
		return nil, err
	}
	env := []string{"LOCALKUBE_ROOT=" + cache, "K8SENV_NODES=" + strconv.Itoa(nodes)}
	if opts.RealNode {
		nodeCache, err := BuildNode(ctx)
		if err != nil {
			return nil, err
		}
		env = append(env, "K8SENV_REALNODE=1", "REALNODE_ROOT="+nodeCache)
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
	// A watchdog stops the cluster if this process dies without calling Stop (a test binary
	// killed by -timeout, say), so no control plane (nor real node) outlives its tests. It
	// starts before up.sh, which dies with this process (it may wait long for the real node).
	watch := exec.Command("bash", "-c",
		`while kill -0 "$1" 2>/dev/null; do sleep 1; done; [ -d "$2" ] && "$3" "$2" >/dev/null 2>&1`,
		"watchdog", strconv.Itoa(os.Getpid()), dir, filepath.Join(scripts, "down.sh"))
	watch.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := watch.Start(); err == nil {
		_ = watch.Process.Release()
	}
	start := time.Now()
	up := exec.CommandContext(ctx, filepath.Join(scripts, "up.sh"), dir)
	up.Env = append(os.Environ(), env...)
	up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// a cancelled ctx: SIGTERM lets up.sh stop what it started (its trap runs down.sh)
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	up.WaitDelay = time.Minute
	var stderr bytes.Buffer
	up.Stderr = &stderr
	if opts.RealNode {
		up.Stderr = io.MultiWriter(&stderr, os.Stderr) // it may wait long for the machine's real node
	}
	out, err := up.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/localkube/up.sh: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kc := lines[len(lines)-1]
	k := &Kube{Kubeconfig: kc, Bin: filepath.Join(cache, "bin"), dir: dir, scripts: scripts}
	if opts.RealNode {
		if k.RealNode, err = readRealNode(filepath.Join(dir, "env")); err != nil {
			k.Stop()
			return nil, err
		}
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
	logger().Info("local cluster up", "kubeconfig", kc, "nodes", nodes, "realNode", opts.RealNode, "took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// readRealNode reads the real node's facts from the env file up.sh writes in its run dir.
func readRealNode(envFile string) (*RealNode, error) {
	b, err := os.ReadFile(envFile)
	if err != nil {
		return nil, fmt.Errorf("reading the local cluster's env: %w", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	if env["REALNODE"] != "1" {
		return nil, fmt.Errorf("%s: up.sh started no real node", envFile)
	}
	r := &RealNode{
		NodeName:       env["REALNODE_NODE_NAME"],
		WorkspaceImage: env["REALNODE_WORKSPACE_IMAGE"],
		BackupImage:    env["REALNODE_BACKUP_IMAGE"],
		StorageClass:   env["REALNODE_STORAGE_CLASS"],
		VolumesDir:     env["REALNODE_VOLUMES"],
		PodCIDR:        env["REALNODE_POD_CIDR"],
		ContainerdSock: env["REALNODE_CONTAINERD_SOCK"],
		NetnsDir:       env["REALNODE_NETNS_DIR"],
	}
	if r.NodeName == "" || r.WorkspaceImage == "" || r.BackupImage == "" || r.StorageClass == "" || r.VolumesDir == "" {
		return nil, fmt.Errorf("%s: the real node's facts are incomplete: %+v", envFile, *r)
	}
	return r, nil
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
	return e.Kube, e.Kube.namespace(t)
}

// namespace creates a fresh namespace for t on k, deleted (without waiting) when t ends.
func (k *Kube) namespace(t testing.TB) string {
	t.Helper()
	ns := UniqueName(t.Name())
	if len(ns) > 63 {
		ns = UniqueName(t.Name()[:40])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// CreateBackupPVC creates the shared backup volume claim in ns (what infra/ provisions in a
// real cluster) in the default StorageClass (kwok's fake volumes).
func (k *Kube) CreateBackupPVC(ctx context.Context, ns, name string) error {
	return k.CreateBackupPVCOn(ctx, ns, name, "")
}

// CreateBackupPVCOn creates the shared backup volume claim in ns in storageClass ("" = the
// default class). With RealNode.StorageClass the volume is real and is provisioned when its
// first pod is scheduled on the real node (WaitForFirstConsumer); VolumeHostPath then finds it.
func (k *Kube) CreateBackupPVCOn(ctx context.Context, ns, name, storageClass string) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: mustQuantity("10Gi"),
			}},
		},
	}
	if storageClass != "" {
		pvc.Spec.StorageClassName = &storageClass
	}
	_, err := k.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating backup PVC %s/%s: %w", ns, name, err)
	}
	return nil
}

// VolumeHostPath returns the host directory behind a bound claim on the real node (a
// local-path volume, under RealNode.VolumesDir), so a test can read what a pod wrote there.
func (k *Kube) VolumeHostPath(ctx context.Context, ns, claim string) (string, error) {
	pvc, err := k.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("claim %s/%s: %w", ns, claim, err)
	}
	if pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("claim %s/%s is not bound yet (%s)", ns, claim, pvc.Status.Phase)
	}
	pv, err := k.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("volume %s of claim %s/%s: %w", pvc.Spec.VolumeName, ns, claim, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("volume %s of claim %s/%s is not on the real node (no hostPath or local source)", pv.Name, ns, claim)
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
