package kube

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// workspace is a session.Workspace resolved once for the builders: its names, labels and
// annotations, and its image and resource quantities with the defaults filled in and parsed.
// The builders take it and cannot fail; Apply resolves once for all six objects.
type workspace struct {
	session.Workspace
	names       Names
	labels      map[string]string // user labels + ours (component workspace)
	selector    map[string]string // ours only
	annotations map[string]string
	image       string
	storage     resource.Quantity
	cpu         resource.Quantity
	memory      resource.Quantity
}

// resolve checks ws and works out what its builders need (the session core has filled in every
// default, so an empty image or quantity is refused, not defaulted): a bad id, label, replica count,
// quantity or a missing image is a session.Invalid error naming the field.
func resolve(ws session.Workspace, o Options) (workspace, error) {
	w := workspace{Workspace: ws, annotations: Annotations(ws), image: ws.Image}
	var err error
	if w.names, err = NamesFor(ws.ID); err != nil {
		return w, err
	}
	if w.labels, err = Labels(ws.ID, ComponentWorkspace, ws.Labels); err != nil {
		return w, err
	}
	if w.selector, err = SelectorLabels(ws.ID, ComponentWorkspace); err != nil {
		return w, err
	}
	if err := checkReplicas(ws.Replicas); err != nil {
		return w, err
	}
	if w.storage, err = session.ParseQuantity("storage", ws.Storage); err != nil {
		return w, err
	}
	if w.cpu, err = session.ParseQuantity("cpu", ws.CPU); err != nil {
		return w, err
	}
	if w.memory, err = session.ParseQuantity("memory", ws.Memory); err != nil {
		return w, err
	}
	if strings.TrimSpace(w.image) == "" {
		return w, session.Invalid("image", "image is required")
	}
	return w, nil
}

// build resolves ws and builds one object of it.
func build[T any](ws session.Workspace, o Options, builder func(workspace, Options) T) (T, error) {
	w, err := resolve(ws, o)
	if err != nil {
		var none T
		return none, err
	}
	return builder(w, o), nil
}

// Annotations are the annotations of every workspace object: owner, creation time and idle
// timeout, so that Kubernetes alone is enough to rebuild the session list. Zero values are
// left out.
func Annotations(ws session.Workspace) map[string]string {
	a := map[string]string{}
	if ws.UserID != "" {
		a[AnnotationUserID] = ws.UserID
	}
	if !ws.CreatedAt.IsZero() {
		a[AnnotationCreatedAt] = ws.CreatedAt.UTC().Format(time.RFC3339)
	}
	if ws.IdleTimeout > 0 {
		a[AnnotationIdleTimeout] = ws.IdleTimeout.String()
	}
	return a
}

// checkReplicas: a workspace runs one pod or, asleep, none.
func checkReplicas(replicas int32) error {
	if replicas < 0 || replicas > 1 {
		return session.Invalid("replicas", "a workspace runs 0 or 1 pods, not %d", replicas)
	}
	return nil
}
