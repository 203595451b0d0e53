package provider

import (
	"context"
	"fmt"
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
	skipUnlessAcc(t)
	env.RealNodeKube(t) // held for both modes: one real node's cluster, stopped when the test ends
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
									return fmt.Errorf("workspace %s restored from %s differs from %s:\n%s", id, location, old, testenv.DiffLines(want, got))
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

// writeTree is the data-path tests' workspace (testenv.WorkspaceTree) with a smaller big
// file: the bytes at scale are internal/datapath's to prove.
var writeTree = testenv.WorkspaceTree(16 << 20)

// manifest checksums workspace id's /app/tree in its pod.
func (a *acc) manifest(id string) (string, error) {
	m, err := a.exec(id, testenv.TreeManifestScript)
	if err == nil && !strings.Contains(m, " ./big.bin") {
		err = fmt.Errorf("the tree of workspace %s has no big.bin:\n%s", id, m)
	}
	return m, err
}

// exec runs a shell script in workspace id's container (as its user) on the real node.
func (a *acc) exec(id, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pods, err := a.kube.Client.CoreV1().Pods(a.ns).List(ctx, metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace,
	})
	if err != nil {
		return "", err
	}
	pod := ""
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			if node := a.kube.RealNode; node == nil || p.Spec.NodeName != node.NodeName {
				return "", fmt.Errorf("pod %s runs on %q, not on the real node", p.Name, p.Spec.NodeName)
			}
			pod = p.Name
		}
	}
	if pod == "" {
		return "", fmt.Errorf("workspace %s has no running pod", id)
	}
	return a.kube.Exec(ctx, a.ns, pod, kube.ContainerName, script)
}
