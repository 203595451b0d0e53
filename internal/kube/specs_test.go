package kube

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the builders")

func testOptions() Options {
	return Options{
		Namespace:         "hyperbola",
		Domain:            "preview.hyperbola.in",
		Port:              8080,
		StorageClass:      "standard-rwo",
		IngressClass:      "nginx",
		ClusterIssuer:     "letsencrypt",
		IngressNamespace:  "ingress-nginx",
		DefaultImage:      "codercom/code-server:4.96.4",
		DefaultStorage:    "5Gi",
		DefaultCPU:        "250m",
		DefaultMemory:     "256Mi",
		BackupPVC:         "hyperbola-backups",
		BackupImage:       "localhost/hyperbola-backup:1",
		ActivatorService:  "hyperbola-activator",
		ActivatorHost:     "session-api-123456789012.us-central1.run.app",
		ActivatorCASecret: "hyperbola-activator-ca",
	}
}

func sleepingWorkspace() session.Workspace {
	ws := testWorkspace()
	ws.Replicas, ws.Activator = 0, true
	return ws
}

func testWorkspace() session.Workspace {
	return session.Workspace{
		ID:          "ab12cd34",
		UserID:      "alice@example.com",
		Image:       "codercom/code-server:4.96.4",
		Storage:     "5Gi",
		CPU:         "250m",
		Memory:      "256Mi",
		Labels:      map[string]string{"team": "web", "example.com/cost-center": "cc-42"},
		Replicas:    1,
		Password:    "correct-horse-battery-staple",
		CreatedAt:   time.Date(2026, 11, 26, 2, 3, 4, 0, time.UTC),
		IdleTimeout: 15 * time.Minute,
	}
}

func testBackup() BackupRequest {
	ws := testWorkspace()
	return BackupRequest{
		ID:      ws.ID,
		Attempt: 2,
		Time:    time.Date(2026, 11, 27, 8, 9, 10, 0, time.UTC),
		UserID:  ws.UserID,
		Labels:  ws.Labels,
	}
}

// golden compares got, as YAML, with testdata/<name>.golden.yaml (rewritten with -update), and
// checks that it decodes strictly into the typed object typed (no misspelt field).
func golden(t *testing.T, name string, got any, typed any) {
	t.Helper()
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal %s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, typed, err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatalf("yaml %s: %v", name, err)
	}
	path := filepath.Join("testdata", name+".golden.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, y, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/kube/ -run Golden -update)", err)
	}
	if !bytes.Equal(y, want) {
		t.Errorf("%s differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, path, y, want)
	}
}

func TestGolden(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	build := map[string]struct {
		build func() (any, error)
		typed any
	}{
		"pvc":             {func() (any, error) { return PersistentVolumeClaim(ws, o) }, &corev1.PersistentVolumeClaim{}},
		"deployment":      {func() (any, error) { return Deployment(ws, o) }, &appsv1.Deployment{}},
		"service":         {func() (any, error) { return Service(ws, o) }, &corev1.Service{}},
		"ingress":         {func() (any, error) { return Ingress(ws, o) }, &networkingv1.Ingress{}},
		"ingress-asleep":  {func() (any, error) { return Ingress(sleepingWorkspace(), o) }, &networkingv1.Ingress{}},
		"networkpolicy":   {func() (any, error) { return NetworkPolicy(ws, o) }, &networkingv1.NetworkPolicy{}},
		"secret":          {func() (any, error) { return Secret(ws, o) }, &corev1.Secret{}},
		"secret-metadata": {func() (any, error) { return SecretMetadata(ws, o) }, &corev1.Secret{}},
		"backup-job":      {func() (any, error) { return BackupJob(testBackup(), o) }, &batchv1.Job{}},
	}
	for name, b := range build {
		t.Run(name, func(t *testing.T) {
			got, err := b.build()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, got, b.typed)
		})
	}
}

func TestDeploymentDecisions(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	ws.Memory = "512Mi"
	ws.Replicas = 0
	ac, err := Deployment(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	roundTrip(t, ac, &d)
	if *d.Spec.Replicas != 0 {
		t.Errorf("replicas = %d, want 0", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if got := c.Resources.Limits.Memory().String(); got != "2Gi" {
		t.Errorf("memory limit = %s, want 2Gi (4 × 512Mi)", got)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit is set")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %s", d.Spec.Strategy.Type)
	}
	// The selector is ours only: user labels may change without touching it.
	for k := range d.Spec.Selector.MatchLabels {
		if !IsReservedLabelKey(k) {
			t.Errorf("selector holds user label %q", k)
		}
	}
	// Defaults fill empty fields.
	ws = session.Workspace{ID: "ab12cd34", Replicas: 1}
	ac, err = Deployment(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ac, &d)
	c = d.Spec.Template.Spec.Containers[0]
	if c.Image != o.DefaultImage || c.Resources.Requests.Cpu().String() != "250m" || c.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("defaults not applied: image %s requests %v limits %v", c.Image, c.Resources.Requests, c.Resources.Limits)
	}
	for _, r := range []int32{-1, 2} {
		ws.Replicas = r
		if _, err := Deployment(ws, o); session.FieldOf(err) != "replicas" {
			t.Errorf("replicas %d: err = %v, want invalid replicas", r, err)
		}
	}
}

func TestOptionalClasses(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	o.StorageClass, o.IngressClass, o.ClusterIssuer = "", "", ""
	pvc, err := PersistentVolumeClaim(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("storage class = %q, want unset (the cluster's default)", *pvc.Spec.StorageClassName)
	}
	ing, err := Ingress(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	if ing.Spec.IngressClassName != nil {
		t.Errorf("ingress class = %q, want unset", *ing.Spec.IngressClassName)
	}
	if _, ok := ing.Annotations["cert-manager.io/cluster-issuer"]; ok {
		t.Error("cluster-issuer annotation without an issuer")
	}
}

// The Ingress of a workspace that is not running goes to the activator only when wake on
// access is on; over HTTPS (with the Cloud Run host) only when a host is set; SNI and
// verification only with a CA secret. Every other field stays the workspace's.
func TestIngressRoute(t *testing.T) {
	decode := func(ws session.Workspace, o Options) networkingv1.Ingress {
		t.Helper()
		ac, err := Ingress(ws, o)
		if err != nil {
			t.Fatal(err)
		}
		var ing networkingv1.Ingress
		roundTrip(t, ac, &ing)
		return ing
	}
	backend := func(ing networkingv1.Ingress) string {
		b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
		if b.Port.Name != "" {
			return b.Name + ":" + b.Port.Name
		}
		return fmt.Sprintf("%s:%d", b.Name, b.Port.Number)
	}
	activatorAnnotations := func(ing networkingv1.Ingress) []string {
		var out []string
		for _, k := range []string{AnnotationBackendProtocol, AnnotationUpstreamVhost, AnnotationProxySSLSecret,
			AnnotationProxySSLVerify, AnnotationProxySSLName, AnnotationProxySSLServerName} {
			if v, ok := ing.Annotations[k]; ok {
				out = append(out, k[strings.LastIndex(k, "/")+1:]+"="+v)
			}
		}
		return out
	}
	running, asleep := testWorkspace(), sleepingWorkspace()
	full := testOptions()
	off := testOptions()
	off.ActivatorService = ""
	plain := testOptions()
	plain.ActivatorHost, plain.ActivatorCASecret = "", ""
	noCA := testOptions()
	noCA.ActivatorCASecret = ""
	port := noCA
	port.ActivatorPort = 8443
	for name, tc := range map[string]struct {
		ws      session.Workspace
		o       Options
		backend string
		ann     []string
	}{
		"running":               {running, full, "vs-code-ab12cd34:http", nil},
		"asleep, wake off":      {asleep, off, "vs-code-ab12cd34:http", nil},
		"asleep, in cluster":    {asleep, plain, "hyperbola-activator:80", nil},
		"asleep, Cloud Run":     {asleep, noCA, "hyperbola-activator:443", []string{"backend-protocol=HTTPS", "upstream-vhost=" + full.ActivatorHost}},
		"asleep, another port":  {asleep, port, "hyperbola-activator:8443", []string{"backend-protocol=HTTPS", "upstream-vhost=" + full.ActivatorHost}},
		"asleep, verified, SNI": {asleep, full, "hyperbola-activator:443", []string{"backend-protocol=HTTPS", "upstream-vhost=" + full.ActivatorHost, "proxy-ssl-secret=hyperbola/hyperbola-activator-ca", "proxy-ssl-verify=on", "proxy-ssl-name=" + full.ActivatorHost, "proxy-ssl-server-name=on"}},
	} {
		ing := decode(tc.ws, tc.o)
		if got := backend(ing); got != tc.backend {
			t.Errorf("%s: backend %s, want %s", name, got, tc.backend)
		}
		if got := activatorAnnotations(ing); fmt.Sprint(got) != fmt.Sprint(tc.ann) {
			t.Errorf("%s: annotations %v, want %v", name, got, tc.ann)
		}
		// host, TLS, timeouts and the certificate request do not depend on the route
		want := decode(running, tc.o)
		if fmt.Sprint(ing.Spec.TLS, ing.Spec.Rules[0].Host, *ing.Spec.IngressClassName, ing.Labels) !=
			fmt.Sprint(want.Spec.TLS, want.Spec.Rules[0].Host, *want.Spec.IngressClassName, want.Labels) ||
			ing.Annotations["cert-manager.io/cluster-issuer"] != want.Annotations["cert-manager.io/cluster-issuer"] ||
			ing.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] != IngressProxyTimeout {
			t.Errorf("%s: the route changed more than the backend: %+v", name, ing)
		}
	}
}

func TestBadQuantities(t *testing.T) {
	o := testOptions()
	for _, tc := range []struct{ field, value string }{
		{"storage", "lots"}, {"storage", "-5Gi"}, {"storage", "0"},
		{"cpu", "fast"}, {"cpu", "0"}, {"memory", "1 GB"},
	} {
		ws := testWorkspace()
		var err error
		switch tc.field {
		case "storage":
			ws.Storage = tc.value
			_, err = PersistentVolumeClaim(ws, o)
		case "cpu":
			ws.CPU = tc.value
			_, err = Deployment(ws, o)
		case "memory":
			ws.Memory = tc.value
			_, err = Deployment(ws, o)
		}
		if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != tc.field {
			t.Errorf("%s=%q: err = %v, want invalid %s", tc.field, tc.value, err, tc.field)
		}
	}
}

func TestSecretNeedsPassword(t *testing.T) {
	ws := testWorkspace()
	ws.Password = ""
	if _, err := Secret(ws, testOptions()); session.FieldOf(err) != "password" {
		t.Errorf("err = %v, want invalid password", err)
	}
	// The metadata needs none.
	if _, err := SecretMetadata(ws, testOptions()); err != nil {
		t.Error(err)
	}
}

var badIDs = []string{"", "ab12cd3", "ab12cd345", "1b12cd34", "AB12CD34", "ab-2cd34", "ab12cd3.", "../../x1", "ab12cd3\n", "äb12cd34"}

// Every function that turns an id into a name, a label or an object refuses a bad id, with
// session.CheckID's error.
func TestBadIDsNeverBecomeNames(t *testing.T) {
	o := testOptions()
	for _, id := range badIDs {
		ws := testWorkspace()
		ws.ID = id
		b := testBackup()
		b.ID = id
		calls := map[string]func() error{
			"NamesFor":          func() error { _, err := NamesFor(id); return err },
			"BackupJobName":     func() error { _, err := BackupJobName(id, 1); return err },
			"SelectorLabels":    func() error { _, err := SelectorLabels(id, ComponentWorkspace); return err },
			"Labels":            func() error { _, err := Labels(id, ComponentWorkspace, nil); return err },
			"SessionSelector":   func() error { _, err := SessionSelector(id); return err },
			"ComponentSelector": func() error { _, err := ComponentSelector(id, ComponentBackup); return err },
			"PVC":               func() error { _, err := PersistentVolumeClaim(ws, o); return err },
			"Deployment":        func() error { _, err := Deployment(ws, o); return err },
			"Service":           func() error { _, err := Service(ws, o); return err },
			"Ingress":           func() error { _, err := Ingress(ws, o); return err },
			"NetworkPolicy":     func() error { _, err := NetworkPolicy(ws, o); return err },
			"Secret":            func() error { _, err := Secret(ws, o); return err },
			"SecretMetadata":    func() error { _, err := SecretMetadata(ws, o); return err },
			"BackupJob":         func() error { _, err := BackupJob(b, o); return err },
		}
		for name, call := range calls {
			err := call()
			if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "uuid" {
				t.Errorf("%s(%q): err = %v, want session.CheckID's error", name, id, err)
			}
		}
	}
}

func TestNames(t *testing.T) {
	n, err := NamesFor("ab12cd34")
	if err != nil {
		t.Fatal(err)
	}
	want := Names{ID: "ab12cd34", Workspace: "vs-code-ab12cd34", Data: "vs-code-ab12cd34-data", Auth: "vs-code-ab12cd34-auth", TLS: "vs-code-ab12cd34-tls", HostPrefix: "vs-code-ab12cd34"}
	if n != want {
		t.Errorf("names = %+v, want %+v", n, want)
	}
	if h := n.Host("preview.hyperbola.in"); h != "vs-code-ab12cd34.preview.hyperbola.in" {
		t.Errorf("host = %s", h)
	}
	if j, _ := n.BackupJob(3); j != "vs-code-ab12cd34-backup-3" {
		t.Errorf("job = %s", j)
	}
	if _, err := n.BackupJob(-1); session.FieldOf(err) != "attempt" {
		t.Errorf("negative attempt: %v", err)
	}
	if s, _ := SessionSelector("ab12cd34"); s != "app.kubernetes.io/managed-by=hyperbola,hyperbola.dev/session=ab12cd34" {
		t.Errorf("selector = %s", s)
	}
	if f := BackupFile("ab12cd34", time.Date(2026, 11, 26, 3, 3, 4, 0, time.FixedZone("CET", 3600))); f != "ab12cd34-20261126T020304Z.zip" {
		t.Errorf("backup file = %s (must be UTC)", f)
	}
}

func TestValidateUserLabels(t *testing.T) {
	ok := []map[string]string{
		nil,
		{},
		{"team": "web", "example.com/cost-center": "cc-42", "env": ""},
		{"a.b/c": strings.Repeat("v", 63)},
		{"kubernetes.io.example.com/x": "y"}, // a domain that merely starts like a reserved one
	}
	for _, l := range ok {
		if err := ValidateUserLabels(l); err != nil {
			t.Errorf("%v: %v", l, err)
		}
	}
	bad := []map[string]string{
		{"hyperbola.dev/session": "zz99zz99"},
		{"hyperbola.dev/anything": "x"},
		{"sub.hyperbola.dev/x": "x"},
		{"app.kubernetes.io/managed-by": "me"},
		{"app.kubernetes.io/name": "x"},
		{"kubernetes.io/hostname": "x"},
		{"node.k8s.io/x": "x"},
		{"Hyperbola.DEV/x": "x"},
		{"bad key": "x"},
		{"": "x"},
		{"/x": "x"},
		{"team": "has space"},
		{"team": strings.Repeat("v", 64)},
		{strings.Repeat("k", 64): "x"},
		{"team": "-leading"},
	}
	for _, l := range bad {
		err := ValidateUserLabels(l)
		if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "labels" {
			t.Errorf("%q: err = %v, want invalid labels", l, err)
		}
	}
	many := map[string]string{}
	for i := range MaxUserLabels + 1 {
		many["k"+strings.Repeat("x", i)] = "v"
	}
	if session.FieldOf(ValidateUserLabels(many)) != "labels" {
		t.Error("too many labels accepted")
	}
	// Builders refuse them too.
	ws := testWorkspace()
	ws.Labels = map[string]string{"hyperbola.dev/session": "zz99zz99"}
	if _, err := Deployment(ws, testOptions()); session.FieldOf(err) != "labels" {
		t.Errorf("Deployment with a reserved label: %v", err)
	}
}

func TestUserLabelsNeverOverrideOurs(t *testing.T) {
	l, err := Labels("ab12cd34", ComponentWorkspace, map[string]string{"team": "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"team":         "web",
		LabelManagedBy: "hyperbola", LabelName: "vs-code", LabelComponent: "workspace", LabelSession: "ab12cd34",
	}
	if len(l) != len(want) {
		t.Fatalf("labels = %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if u := UserLabels(l); len(u) != 1 || u["team"] != "web" {
		t.Errorf("UserLabels = %v", u)
	}
}

func TestBackupJob(t *testing.T) {
	o := testOptions()
	o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	o.BackupDeadline = 10 * time.Minute
	ac, err := BackupJob(testBackup(), o)
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	roundTrip(t, ac, &j)
	if j.Spec.Template.Labels["hyperbola.dev/test-fail"] != "true" {
		t.Error("backup pod label missing")
	}
	if _, ok := j.Labels["hyperbola.dev/test-fail"]; ok {
		t.Error("backup pod label on the Job itself")
	}
	if *j.Spec.ActiveDeadlineSeconds != 600 || *j.Spec.TTLSecondsAfterFinished != 300 || *j.Spec.BackoffLimit != 0 {
		t.Errorf("deadline %d ttl %d backoff %d", *j.Spec.ActiveDeadlineSeconds, *j.Spec.TTLSecondsAfterFinished, *j.Spec.BackoffLimit)
	}
	if got, want := j.Annotations[AnnotationBackupLocation], "pvc://hyperbola-backups/ab12cd34/ab12cd34-20261127T080910Z.zip"; got != want {
		t.Errorf("location = %s, want %s", got, want)
	}
	// The session's data is mounted read-only, at the volume and at the mount.
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.Name == "data" && !v.PersistentVolumeClaim.ReadOnly {
			t.Error("data volume is not read-only")
		}
	}
	for _, m := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "data" && !m.ReadOnly {
			t.Error("data mount is not read-only")
		}
	}
	for _, bad := range []map[string]string{{LabelSession: "zz99zz99"}, {"job-name": "x"}, {"bad key": "x"}} {
		o.BackupPodLabels = bad
		if _, err := BackupJob(testBackup(), o); err == nil {
			t.Errorf("backup pod labels %v accepted", bad)
		}
		if err := o.Validate(); err == nil {
			t.Errorf("Validate accepted backup pod labels %v", bad)
		}
	}
	b := testBackup()
	b.Time = time.Time{}
	if _, err := BackupJob(b, testOptions()); err == nil {
		t.Error("a backup without a time was built")
	}
}

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
	} {
		o := testOptions()
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
}

func roundTrip(t *testing.T, ac, typed any) {
	t.Helper()
	js, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, typed); err != nil {
		t.Fatal(err)
	}
}
