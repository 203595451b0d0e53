package kube

import (
	"fmt"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
)

// OptionsFromConfig takes the builders' settings from the configuration, and checks them.
func OptionsFromConfig(c *config.Config) (Options, error) {
	o := Options{
		Namespace:        c.Namespace,
		Domain:           c.Domain,
		Port:             c.UserPodPort,
		StorageClass:     c.StorageClass,
		IngressClass:     c.IngressClass,
		ClusterIssuer:    c.ClusterIssuer,
		IngressNamespace: c.IngressNamespace,
		DefaultImage:     c.UserPodImage,
		DefaultStorage:   c.StorageSize,
		DefaultCPU:       c.CPURequest,
		DefaultMemory:    c.MemoryRequest,
		BackupPVC:        c.BackupPVC,
		BackupImage:      c.BackupImage,
		BackupDeadline:   c.BackupDeadline,
	}
	var err error
	if o.NodeSelector, err = ParseNodeSelector(c.NodeSelector); err != nil {
		return o, fmt.Errorf("HYPERBOLA_NODE_SELECTOR: %w", err)
	}
	if o.Tolerations, err = ParseTolerations(c.Tolerations); err != nil {
		return o, fmt.Errorf("HYPERBOLA_TOLERATIONS: %w", err)
	}
	if c.WakeOnAccess() {
		o.ActivatorService = c.ActivatorService
		o.ActivatorPort = c.ActivatorPort
		o.ActivatorHost = c.ActivatorHost
		o.ActivatorCASecret = c.ActivatorCASecret
	}
	return o, o.Validate()
}
