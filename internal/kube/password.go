package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Password reads the IDE password from the session's Secret.
func (c *Cluster) Password(ctx context.Context, id string) (string, error) {
	n, err := NamesFor(id)
	if err != nil {
		return "", err
	}
	s, err := c.rd.CoreV1().Secrets(c.opts.Namespace).Get(ctx, n.Auth, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", c.notFound(id, "no Secret "+c.opts.Namespace+"/"+n.Auth, err)
	}
	if err != nil {
		return "", c.kubeError("get", session.ObjectSecret, n.Auth, err)
	}
	pw, ok := s.Data[PasswordKey]
	if !ok || len(pw) == 0 {
		return "", fmt.Errorf("kube: the Secret %s/%s holds no %s", c.opts.Namespace, n.Auth, PasswordKey)
	}
	return string(pw), nil
}
