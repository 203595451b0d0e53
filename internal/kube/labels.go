package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Label keys and values on every object Hyperbola creates (and on its pod templates).
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelSession   = "hyperbola.dev/session"

	ManagedByValue     = "hyperbola"
	NameValue          = "vs-code"
	ComponentWorkspace = "workspace"
	ComponentBackup    = "backup"
	// ComponentRestore is a session's restore Job; ComponentCheck and ComponentPrune are the
	// Jobs that read an archive through and remove archives: they belong to no session.
	ComponentRestore = "restore"
	ComponentCheck   = "check"
	ComponentPrune   = "prune"
)

// Annotation keys.
const (
	AnnotationUserID         = "hyperbola.dev/user-id"         // the session's owner
	AnnotationCreatedAt      = "hyperbola.dev/created-at"      // RFC 3339, UTC
	AnnotationIdleTimeout    = "hyperbola.dev/idle-timeout"    // a Go duration, e.g. "15m0s"
	AnnotationBackupLocation = "hyperbola.dev/backup-location" // on backup Jobs: pvc://<pvc>/<id>/<file>.zip
	AnnotationRestoreFrom    = "hyperbola.dev/restore-from"    // on restore and check Jobs: the archive they read
	// AnnotationTemplate is on a workspace's pod template: a hash of the rest of the template,
	// so readiness tells a pod of the current template from an older one by the pod alone,
	// without waiting for the Deployment's status (which trails its pods by seconds when the
	// controller manager is busy).
	AnnotationTemplate = "hyperbola.dev/template"
)

// MaxUserLabels bounds how many labels a user may put on a workspace.
const MaxUserLabels = 32

// reservedLabelDomains are the label prefixes (and their subdomains) a user may not use:
// Hyperbola's own, and the ones Kubernetes reserves for itself.
var reservedLabelDomains = [...]string{"hyperbola.dev", "kubernetes.io", "k8s.io"}

// SelectorLabels are the labels that select a session's objects of one component; they are the
// Deployment's (immutable) selector and the NetworkPolicy's pod selector.
func SelectorLabels(id, component string) (map[string]string, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	return map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelName:      NameValue,
		LabelComponent: component,
		LabelSession:   id,
	}, nil
}

// Labels are the labels of a session's object of one component: the user's labels, then
// Hyperbola's (which a user label can never override: ValidateUserLabels refuses their keys).
func Labels(id, component string, user map[string]string) (map[string]string, error) {
	ours, err := SelectorLabels(id, component)
	if err != nil {
		return nil, err
	}
	if err := ValidateUserLabels(user); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(user)+len(ours))
	maps.Copy(out, user)
	maps.Copy(out, ours)
	return out, nil
}

// ArchiveLabels are the labels of a Job that works on the backup volume for no session (a
// check or a prune): Hyperbola's, without a session.
func ArchiveLabels(component string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: component}
}

// SessionSelector selects every object of session id (both components).
func SessionSelector(id string) (string, error) {
	if err := session.CheckID(id); err != nil {
		return "", err
	}
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue, LabelSession: id}).String(), nil
}

// ComponentSelector selects the objects of session id of one component.
func ComponentSelector(id, component string) (string, error) {
	set, err := SelectorLabels(id, component)
	if err != nil {
		return "", err
	}
	return labels.SelectorFromSet(set).String(), nil
}

// ManagedSelector selects every object Hyperbola manages.
func ManagedSelector() string {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue}).String()
}

// IsReservedLabelKey reports whether key belongs to Hyperbola or Kubernetes: its prefix is one
// of hyperbola.dev, kubernetes.io, k8s.io or a subdomain of them (app.kubernetes.io, ...).
func IsReservedLabelKey(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	prefix = strings.ToLower(prefix)
	for _, d := range reservedLabelDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

// UserLabels returns the labels of an object that are not Hyperbola's or Kubernetes' own:
// the user's labels as they were applied.
func UserLabels(objectLabels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range objectLabels {
		if IsReservedLabelKey(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out
}

// ValidateUserLabels checks the labels a user puts on a workspace: at most MaxUserLabels, each
// a valid Kubernetes label key and value, and none under a reserved prefix (hyperbola.dev/,
// app.kubernetes.io/, any kubernetes.io/ or k8s.io/ domain). Its errors are session.Invalid
// errors naming field "labels".
func ValidateUserLabels(l map[string]string) error {
	if len(l) > MaxUserLabels {
		return session.Invalid("labels", "at most %d labels are allowed, got %d", MaxUserLabels, len(l))
	}
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if err := validateLabel(k, l[k]); err != nil {
			return err
		}
		if IsReservedLabelKey(k) {
			return session.Invalid("labels", "label %q: the prefixes hyperbola.dev/, kubernetes.io/ and k8s.io/ (and their subdomains) are reserved", k)
		}
	}
	return nil
}

// validateBackupPodLabels checks the extra labels of backup pods (an operator's setting, not a
// user's: reserved prefixes are allowed, e.g. hyperbola.dev/test-fail), refusing only the keys
// that Hyperbola sets itself or that the Job controller sets on its pods.
func validateBackupPodLabels(l map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if err := validateLabel(k, l[k]); err != nil {
			return fmt.Errorf("backup pod labels: %w", err)
		}
		switch k {
		case LabelManagedBy, LabelName, LabelComponent, LabelSession,
			"job-name", "controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid":
			return session.Invalid("labels", "backup pod label %q is set by Hyperbola or the Job controller", k)
		}
	}
	return nil
}

func validateLabel(k, v string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return session.Invalid("labels", "label key %q: %s", k, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return session.Invalid("labels", "label %q value %q: %s", k, v, strings.Join(errs, "; "))
	}
	return nil
}
