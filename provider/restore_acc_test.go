package provider

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// placementSetting is one provider attribute (direct mode) and the environment variable the
// test's own session core (and the API in endpoint mode) reads for it.
type placementSetting struct{ attr, env, value string }

// realNodePlacement puts workspaces and backup Jobs on the real node, with its images.
func realNodePlacement(node *testenv.RealNode) []placementSetting {
	tol := node.Toleration()
	return []placementSetting{
		{"node_selector", "HYPERBOLA_NODE_SELECTOR", testenv.RealNodeLabel + "=real"},
		{"tolerations", "HYPERBOLA_TOLERATIONS", fmt.Sprintf("%s=%s:%s", tol.Key, tol.Value, tol.Effect)},
		{"storage_class", "HYPERBOLA_STORAGE_CLASS", node.StorageClass},
		{"default_image", "USER_POD_IMAGE", node.WorkspaceImage},
		{"backup_image", "HYPERBOLA_BACKUP_IMAGE", node.BackupImage},
		{"default_storage", "HYPERBOLA_STORAGE_SIZE", "2Gi"},
	}
}

// Another user's backup is refused on restore_from (it reads as one that does not exist),
// and nothing is created.
func TestAccWorkspaceResource_RestoreFromRefusesAnotherUsersBackup(t *testing.T) {
	eachMode(t, func(t *testing.T, a *acc) {
		theirs := a.seedBackup(t, "someone@example.com", "ab12cd34", time.Date(2026, 11, 26, 2, 3, 4, 0, time.UTC))
		var steps []tfresource.TestStep
		for _, ref := range []string{theirs.ID, theirs.Location, theirs.SessionID} {
			steps = append(steps, tfresource.TestStep{
				Config:      a.config(fmt.Sprintf("  restore_from = %q", ref)),
				ExpectError: attrError("Cannot create workspace", "restore_from", fmt.Sprintf(`no backup %q of user "acc@example.com"`, ref)),
			})
		}
		tfresource.Test(t, tfresource.TestCase{ProtoV6ProviderFactories: a.factories, Steps: steps})
		page, err := a.svc.List(context.Background(), session.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Sessions) != 0 {
			t.Errorf("refused restores created %d workspaces", len(page.Sessions))
		}
	})
}

// seedBackup records an archive of userID's workspace sid, taken at, in the catalog of the
// test's session core (no file behind it: enough for what is refused before it is read).
func (a *acc) seedBackup(t *testing.T, userID, sid string, at time.Time) *session.BackupRecord {
	t.Helper()
	id := sid + "-" + at.UTC().Format("20060102T150405Z")
	rec := &session.BackupRecord{
		ID: id, SessionID: sid, UserID: userID, Location: "pvc://hyperbola-backups/" + sid + "/" + id + ".zip",
		Bytes: 4096, Storage: "5Gi", CreatedAt: at.UTC(), State: session.BackupAvailable,
	}
	if err := a.store.PutBackup(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// Through terraform apply on the real node: a tree written into a workspace, the workspace
// destroyed (its delete backs it up), and a new one applied with restore_from = the old
// workspace's id holds the same tree (checksums, modes, symlinks).
func TestAccWorkspaceResource_RestoreFromBackup(t *testing.T) {
	for _, m := range accModes {
		t.Run(string(m), func(t *testing.T) {
			a := newAccWith(t, m, accOptions{realNode: true})
			var old, id, location, want string
			tfresource.Test(t, tfresource.TestCase{
				ProtoV6ProviderFactories: a.factories,
				Steps: []tfresource.TestStep{{
					Config: a.config(""),
					Check: tfresource.ComposeAggregateTestCheckFunc(
						captureID(wsName, &old),
						func(*terraform.State) error {
							if _, err := a.exec(old, writeTree); err != nil {
								return err
							}
							var err error
							want, err = a.manifest(old)
							return err
						},
					),
				}},
				CheckDestroy: tfresource.ComposeAggregateTestCheckFunc(
					a.deletedWithBackup(&old),
					func(*terraform.State) error {
						s, err := a.svc.Get(context.Background(), old)
						if err == nil {
							location = s.BackupLocation
						}
						return err
					},
				),
			})
			cfg := a.config(fmt.Sprintf("  restore_from = %q", old))
			tfresource.Test(t, tfresource.TestCase{
				ProtoV6ProviderFactories: a.factories,
				Steps: []tfresource.TestStep{
					{
						Config: cfg,
						Check: tfresource.ComposeAggregateTestCheckFunc(
							captureID(wsName, &id),
							tfresource.TestCheckResourceAttr(wsName, "status", "running"),
							tfresource.TestCheckResourceAttr(wsName, "restore_from", old),
							tfresource.TestCheckResourceAttrPtr(wsName, "restored_from", &location),
							tfresource.TestCheckResourceAttrSet(wsName, "restored_at"),
							func(*terraform.State) error {
								got, err := a.manifest(id)
								if err != nil {
									return err
								}
								if got != want {
									return fmt.Errorf("workspace %s restored from %s differs from %s:\n%s", id, location, old, diffLines(want, got))
								}
								return nil
							},
						),
					},
					{Config: cfg, PlanOnly: true}, // restore_from stays as configured: no diff
				},
				CheckDestroy: a.deletedWithBackup(&id),
			})
		})
	}
}

// writeTree is a workspace as users make them (as internal/datapath writes it, with a
// smaller big file: the bytes at scale are datapath's to prove): text and binary files,
// hidden files and directories, empty directories, symlinks (to a file, to a directory,
// dangling), names with spaces and non-ASCII letters, and modes from 600 to 755.
const writeTree = `set -eu
rm -rf /app/tree && mkdir -p /app/tree && cd /app/tree
mkdir -p src/pkg docs empty/nested-empty .hidden-dir
printf 'hello, world\n' > hello.txt
printf 'package main\n\nfunc main() {}\n' > src/pkg/main.go
printf 'TOKEN=abc\n' > .env
printf 'hidden\n' > .hidden-dir/file
printf '# notes ✓ é\n' > 'docs/name with spaces ü.md'
head -c 16777216 /dev/urandom > big.bin
head -c 4099 /dev/urandom > small.bin
: > empty-file
printf '#!/bin/sh\necho hi\n' > run.sh
chmod 755 run.sh
chmod 600 .env
chmod 640 src/pkg/main.go
chmod 700 .hidden-dir
chmod 750 docs
ln -s src/pkg/main.go link-to-main
ln -s src link-to-dir
ln -s /nonexistent/target dangling-link
`

// manifestScript prints one line per entry of /app/tree, sorted: the type, the mode, the
// SHA-256 of a file's bytes and a link's target.
const manifestScript = `set -eu
cd /app/tree
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do
  if [ -L "$f" ]; then printf 'l %s -> %s\n' "$f" "$(readlink "$f")"
  elif [ -d "$f" ]; then printf 'd %s %s\n' "$(stat -c %a "$f")" "$f"
  else printf 'f %s %s %s\n' "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"
  fi
done
`

// manifest checksums workspace id's /app/tree in its pod.
func (a *acc) manifest(id string) (string, error) {
	m, err := a.exec(id, manifestScript)
	if err == nil && !strings.Contains(m, " ./big.bin") {
		err = fmt.Errorf("the tree of workspace %s has no big.bin:\n%s", id, m)
	}
	return m, err
}

// exec runs a shell script in workspace id's container (as its user) on the real node.
func (a *acc) exec(id, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pods, err := env.Kube.Client.CoreV1().Pods(a.ns).List(ctx, metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace,
	})
	if err != nil {
		return "", err
	}
	pod := ""
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			if node := env.Kube.RealNode; node == nil || p.Spec.NodeName != node.NodeName {
				return "", fmt.Errorf("pod %s runs on %q, not on the real node", p.Name, p.Spec.NodeName)
			}
			pod = p.Name
		}
	}
	if pod == "" {
		return "", fmt.Errorf("workspace %s has no running pod", id)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(env.Kube.Bin, "kubectl"), "--kubeconfig", env.Kube.Kubeconfig,
		"-n", a.ns, "exec", pod, "-c", kube.ContainerName, "--", "/bin/sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("exec in %s: %w\n%s", pod, err, stderr.String())
	}
	return stdout.String(), nil
}

// diffLines describes how two manifests differ.
func diffLines(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var out []string
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
