package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
)

// The check Job's decisions.
const (
	// DefaultCheckDeadline bounds a check Job's run: reading a large archive through takes a
	// while, and a create that restores waits for it.
	DefaultCheckDeadline = 10 * time.Minute
	// checkPrefix starts every check Job's name.
	checkPrefix = "hyperbola-check-"
)

// CheckRequest is one read of an archive through.
type CheckRequest struct {
	// Name is the Job's: CheckJobName.
	Name     string
	Location string // pvc://<backup pvc>/<session id>/<session id>-<UTC time>.zip
}

// CheckJobName names a check Job of the archive at location: hyperbola-check-<10 hex of the
// location's SHA-256>-<suffix>, where suffix (random, from the caller) keeps two reads of one
// archive apart.
func CheckJobName(location, suffix string) string {
	sum := sha256.Sum256([]byte(location))
	return checkPrefix + hex.EncodeToString(sum[:])[:10] + "-" + suffix
}

// CheckJob builds the Job that reads the archive at r.Location through, with the backup claim
// READ-ONLY, and reports in one JSON line (checkscript.go) what it holds or what is wrong with
// it. It belongs to no session: ArchiveLabels(ComponentCheck), and the annotation
// hyperbola.dev/restore-from names the archive. The caller deletes it once it has read the
// answer; its TTL removes one a caller could not.
func CheckJob(r CheckRequest, o Options) (*batchv1ac.JobApplyConfiguration, error) {
	if errs := validation.IsDNS1123Label(r.Name); len(errs) > 0 {
		return nil, fmt.Errorf("check job %q: %s", r.Name, strings.Join(errs, "; "))
	}
	rel, err := ArchivePath(o, r.Location)
	if err != nil {
		return nil, fmt.Errorf("check job %s: %w", r.Name, err)
	}
	jobLabels := ArchiveLabels(ComponentCheck)
	ctr := toolContainer(o, "check", checkScript,
		map[string]string{"ARCHIVE": rel, "LOCATION": r.Location}, backupMount(true))
	pod := toolPod(o, ctr, backupVolume(o, true))
	return toolJob(r.Name, o, jobLabels, maps.Clone(jobLabels), map[string]string{AnnotationRestoreFrom: r.Location},
		DefaultCheckDeadline, DefaultBackupTTL, pod), nil
}
