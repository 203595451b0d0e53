package kube

import (
	"strings"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	if err := testOptions().Validate(); err != nil {
		t.Error(err)
	}
	for name, mutate := range map[string]func(*Options){
		"namespace":   func(o *Options) { o.Namespace = "Bad_NS" },
		"empty ns":    func(o *Options) { o.Namespace = "" },
		"domain":      func(o *Options) { o.Domain = "bad domain" },
		"long domain": func(o *Options) { o.Domain = strings.Repeat("a.", 120) + "io" },
		"port":        func(o *Options) { o.Port = 0 },
		"big port":    func(o *Options) { o.Port = 70000 },
		"ingress ns":  func(o *Options) { o.IngressNamespace = "" },
		"backup pvc":  func(o *Options) { o.BackupPVC = "" },
		"image":       func(o *Options) { o.BackupImage = " " },
		"class":       func(o *Options) { o.StorageClass = "Not Valid" },
		"deadline":    func(o *Options) { o.BackupDeadline = -time.Second },
		"activator":   func(o *Options) { o.ActivatorService = "Not_A_Service" },
		"act. host":   func(o *Options) { o.ActivatorHost = "https://x.run.app" },
		"act. port":   func(o *Options) { o.ActivatorPort = 70000 },
		"ca no host":  func(o *Options) { o.ActivatorHost = "" },
		"ca secret":   func(o *Options) { o.ActivatorCASecret = "Bad Secret" },
		"dns ns":      func(o *Options) { o.DNSNamespace = "Kube_System" },
		"dns labels":  func(o *Options) { o.DNSPodLabels = map[string]string{"bad key!": "x"} },
		"dns cidr":    func(o *Options) { o.DNSCIDRs = []string{"169.254.20.10"} },
		"probe cidr":  func(o *Options) { o.ProbeSourceCIDRs = []string{"10.8.0.1/28"} },
		"page size":   func(o *Options) { o.ListPageSize = -1 },
	} {
		o := testOptions()
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
}

func TestWarmVolumeOptions(t *testing.T) {
	for _, tc := range []struct {
		n    int
		size string
		ok   bool
	}{{0, "", true}, {2, "5Gi", true}, {2, "", false}, {2, "0", false}, {2, "five", false}, {-1, "5Gi", false}} {
		o := testOptions()
		o.WarmVolumes, o.WarmVolumeSize = tc.n, tc.size
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%d of %q: %v", tc.n, tc.size, err)
		}
	}
}
