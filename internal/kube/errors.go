package kube

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// kubeError wraps a failed API call with what it was doing. A cluster that cannot answer (no
// connection, timeouts, 429, 5xx) gives a session.KindUnavailable error; the client-go error
// stays in the chain for apierrors.
func (c *Cluster) kubeError(op string, kind session.ObjectKind, name string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("kube: %s %s %s/%s", op, kind, c.opts.Namespace, name)
	if kind == "" {
		msg = fmt.Sprintf("kube: %s in %s", op, c.opts.Namespace)
	}
	if transient(err) {
		return &session.Error{Kind: session.KindUnavailable, Message: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer from the API server: the connection failed
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}

// listError is kubeError for a list of what (a kind, plural) by selector.
func (c *Cluster) listError(what, selector string, err error) error {
	return c.kubeError("list "+what+" "+selector, "", "", err)
}

// notFound is a session.KindNotFound error about session id that keeps err in its chain.
func (c *Cluster) notFound(id, what string, err error) error {
	return &session.Error{Kind: session.KindNotFound, Message: fmt.Sprintf("session %q not found: %s", id, what), Err: err}
}
