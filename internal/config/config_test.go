package config

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestWakeOnAccessSettings(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for name, tc := range map[string]struct {
		env     map[string]string
		service string
		port    int32
		on      bool
	}{
		"defaults: no secret, off":  {env: nil, service: "hyperbola-activator", port: 80, on: false},
		"secret turns it on":        {env: map[string]string{"HYPERBOLA_WAKE_SECRET": secret}, service: "hyperbola-activator", port: 80, on: true},
		"a host means HTTPS on 443": {env: map[string]string{"HYPERBOLA_WAKE_SECRET": secret, "HYPERBOLA_ACTIVATOR_HOST": "api.run.app"}, service: "hyperbola-activator", port: 443, on: true},
		"an explicit port":          {env: map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app", "HYPERBOLA_ACTIVATOR_PORT": "8443"}, service: "hyperbola-activator", port: 8443},
		"set and empty disables":    {env: map[string]string{"HYPERBOLA_WAKE_SECRET": secret, "HYPERBOLA_ACTIVATOR_SERVICE": ""}, service: "", port: 80, on: false},
		"a blank value disables":    {env: map[string]string{"HYPERBOLA_WAKE_SECRET": secret, "HYPERBOLA_ACTIVATOR_SERVICE": "  "}, service: "", port: 80, on: false},
		"another service":           {env: map[string]string{"HYPERBOLA_WAKE_SECRET": secret, "HYPERBOLA_ACTIVATOR_SERVICE": "wake"}, service: "wake", port: 80, on: true},
	} {
		c, err := FromLookup(lookup(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.ActivatorService != tc.service || c.ActivatorPort != tc.port || c.WakeOnAccess() != tc.on {
			t.Errorf("%s: service %q port %d on %v, want %q %d %v", name, c.ActivatorService, c.ActivatorPort, c.WakeOnAccess(), tc.service, tc.port, tc.on)
		}
	}
	for name, env := range map[string]map[string]string{
		"bad port":  {"HYPERBOLA_ACTIVATOR_PORT": "70000"},
		"port text": {"HYPERBOLA_ACTIVATOR_PORT": "https"},
	} {
		if _, err := FromLookup(lookup(env)); err == nil {
			t.Errorf("%s: accepted %v", name, env)
		}
	}
}

// nginx verifies the activator's host by default (internal/kube names the Secret infra
// creates when none is set); only an explicit opt-out turns it off.
func TestActivatorVerification(t *testing.T) {
	host := map[string]string{"HYPERBOLA_ACTIVATOR_HOST": "api.run.app"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range host {
			m[a] = b
		}
		return m
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		ca   string
		skip bool
	}{
		"no host: nothing to verify": {env: nil, ca: ""},
		"a host: verified":           {env: host, ca: ""},
		"another secret":             {env: with("HYPERBOLA_ACTIVATOR_CA_SECRET", "my-cas"), ca: "my-cas"},
		"opted out":                  {env: with("HYPERBOLA_ACTIVATOR_SKIP_VERIFY", "true"), ca: "", skip: true},
		"not opted out":              {env: with("HYPERBOLA_ACTIVATOR_SKIP_VERIFY", "false"), ca: ""},
	} {
		c, err := FromLookup(lookup(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.ActivatorCASecret != tc.ca || c.ActivatorSkipVerify != tc.skip {
			t.Errorf("%s: CA secret %q skip %v, want %q %v", name, c.ActivatorCASecret, c.ActivatorSkipVerify, tc.ca, tc.skip)
		}
	}
	if _, err := FromLookup(lookup(with("HYPERBOLA_ACTIVATOR_SKIP_VERIFY", "maybe"))); err == nil {
		t.Error("HYPERBOLA_ACTIVATOR_SKIP_VERIFY=maybe accepted")
	}
}

func TestStuckAfter(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want time.Duration
		bad  bool
	}{
		"default":        {want: 30 * time.Minute},
		"an hour":        {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "1h"}, want: time.Hour},
		"blank: default": {env: map[string]string{"HYPERBOLA_STUCK_AFTER": " "}, want: 30 * time.Minute},
		"the minimum":    {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "1m"}, want: time.Minute},
		"under a minute": {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "30s"}, bad: true},
		"zero":           {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "0"}, bad: true},
		"negative":       {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "-5m"}, bad: true},
		"no unit":        {env: map[string]string{"HYPERBOLA_STUCK_AFTER": "30"}, bad: true},
	} {
		c, err := FromLookup(lookup(tc.env))
		switch {
		case tc.bad && err == nil:
			t.Errorf("%s: accepted %v as %v", name, tc.env, c.StuckAfter)
		case tc.bad && !strings.Contains(err.Error(), "HYPERBOLA_STUCK_AFTER"):
			t.Errorf("%s: the error does not name the variable: %v", name, err)
		case !tc.bad && err != nil:
			t.Errorf("%s: %v", name, err)
		case !tc.bad && c.StuckAfter != tc.want:
			t.Errorf("%s: StuckAfter = %v, want %v", name, c.StuckAfter, tc.want)
		}
	}
}

func TestIdleConnectedMax(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want time.Duration
		bad  bool
	}{
		"default":        {want: 2 * time.Hour},
		"four hours":     {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "4h"}, want: 4 * time.Hour},
		"no cap":         {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "0"}, want: 0},
		"the minimum":    {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "1m"}, want: time.Minute},
		"under a minute": {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "30s"}, bad: true},
		"negative":       {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "-1h"}, bad: true},
		"no unit":        {env: map[string]string{"HYPERBOLA_IDLE_CONNECTED_MAX": "7200"}, bad: true},
	} {
		c, err := FromLookup(lookup(tc.env))
		switch {
		case tc.bad && err == nil:
			t.Errorf("%s: accepted %v as %v", name, tc.env, c.IdleConnectedMax)
		case tc.bad && !strings.Contains(err.Error(), "HYPERBOLA_IDLE_CONNECTED_MAX"):
			t.Errorf("%s: the error does not name the variable: %v", name, err)
		case !tc.bad && err != nil:
			t.Errorf("%s: %v", name, err)
		case !tc.bad && c.IdleConnectedMax != tc.want:
			t.Errorf("%s: IdleConnectedMax = %v, want %v", name, c.IdleConnectedMax, tc.want)
		}
	}
}

func TestBackupRetention(t *testing.T) {
	const v = "HYPERBOLA_BACKUP_RETENTION"
	for name, tc := range map[string]struct {
		env  map[string]string
		want time.Duration
		bad  bool
	}{
		"default: 30 days": {want: 30 * 24 * time.Hour},
		"in days":          {env: map[string]string{v: "7d"}, want: 7 * 24 * time.Hour},
		"in hours":         {env: map[string]string{v: "36h"}, want: 36 * time.Hour},
		"0 keeps forever":  {env: map[string]string{v: "0"}, want: 0},
		"0d too":           {env: map[string]string{v: "0d"}, want: 0},
		"minutes: a typo":  {env: map[string]string{v: "30m"}, bad: true},
		"negative":         {env: map[string]string{v: "-1d"}, bad: true},
		"no unit":          {env: map[string]string{v: "30"}, bad: true},
		"nonsense":         {env: map[string]string{v: "a month"}, bad: true},
	} {
		c, err := FromLookup(lookup(tc.env))
		switch {
		case tc.bad && err == nil:
			t.Errorf("%s: accepted %v as %v", name, tc.env, c.BackupRetention)
		case tc.bad && !strings.Contains(err.Error(), v):
			t.Errorf("%s: the error does not name the variable: %v", name, err)
		case !tc.bad && err != nil:
			t.Errorf("%s: %v", name, err)
		case !tc.bad && c.BackupRetention != tc.want:
			t.Errorf("%s: BackupRetention = %v, want %v", name, c.BackupRetention, tc.want)
		}
	}
}

func TestNamedKeys(t *testing.T) {
	const keys = `[{"name":"portal","key":"k1","role":"tenant","users":["*@school.edu"]},{"name":"prom","key":"k2","role":"metrics"}]`
	c, err := FromLookup(lookup(map[string]string{"API_KEYS_JSON": keys, "API_KEY": "plain"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NamedKeys) != 2 || c.NamedKeys[0].Users[0] != "*@school.edu" || c.NamedKeys[1].Role != "metrics" ||
		c.NamedKeysFrom != "API_KEYS_JSON" || len(c.APIKeys) != 1 {
		t.Fatalf("%+v from %s, plain %q", c.NamedKeys, c.NamedKeysFrom, c.APIKeys)
	}
	file := t.TempDir() + "/keys.json"
	if err := os.WriteFile(file, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_API_KEYS_FILE": file}))
	if err != nil || len(c.NamedKeys) != 2 || c.NamedKeysFrom != "HYPERBOLA_API_KEYS_FILE" {
		t.Fatalf("from a file: %v %+v", err, c)
	}
	for env, want := range map[string]string{
		`{"API_KEYS_JSON":"[{\"name\":\"x\",\"key\":\"secret-value\",\"rol\":\"admin\"}]"}`: `API_KEYS_JSON: want a JSON array`,
		`{"API_KEYS_JSON":"{\"name\":\"x\"}"}`:                                              `API_KEYS_JSON: want a JSON array`,
		`{"API_KEYS_JSON":"[]"}`:                                                            `API_KEYS_JSON holds no keys`,
		`{"HYPERBOLA_API_KEYS_FILE":"/nonexistent/keys.json"}`:                              `HYPERBOLA_API_KEYS_FILE: open`,
		`{"HYPERBOLA_API_KEYS_FILE":"/x","API_KEYS_JSON":"[]"}`:                             `both set`,
	} {
		var m map[string]string
		if err := json.Unmarshal([]byte(env), &m); err != nil {
			t.Fatal(err)
		}
		_, err := FromLookup(lookup(m))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret-value") {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
}

func TestLimits(t *testing.T) {
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxCPU != "4" || c.MaxMemory != "16Gi" || c.MaxStorage != "100Gi" || c.MaxSessionsPerUser != 0 ||
		c.MaxRunningPerUser != 0 || c.MaxRunning != 0 || strings.Join(c.ImageAllowlist, ",") != "codercom/code-server:4.96.4,codercom/" {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_MAX_CPU": "", "HYPERBOLA_MAX_MEMORY": "64Gi",
		"HYPERBOLA_IMAGE_ALLOWLIST": "us-docker.pkg.dev/p/r/, codercom/code-server:4.96.4", "HYPERBOLA_MAX_RUNNING": "50"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxCPU != "" || c.MaxMemory != "64Gi" || len(c.ImageAllowlist) != 2 || c.ImageAllowlist[0] != "us-docker.pkg.dev/p/r/" || c.MaxRunning != 50 {
		t.Fatalf("set: %+v", c)
	}
	for name, env := range map[string]map[string]string{
		"not a quantity":            {"HYPERBOLA_MAX_STORAGE": "lots"},
		"negative count":            {"HYPERBOLA_MAX_SESSIONS_PER_USER": "-1"},
		"default above the maximum": {"HYPERBOLA_STORAGE_SIZE": "200Gi"},
		"default image not allowed": {"HYPERBOLA_IMAGE_ALLOWLIST": "us-docker.pkg.dev/p/r/"},
	} {
		if _, err := FromLookup(lookup(env)); err == nil {
			t.Errorf("%s: accepted %v", name, env)
		}
	}
}

func TestNetworkPolicySettings(t *testing.T) {
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DNSNamespace != "kube-system" || c.DNSPodLabels != "k8s-app=kube-dns" || c.DNSCIDRs != nil || c.ProbeSourceCIDRs != nil {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_DNS_CIDRS": "169.254.20.10/32",
		"HYPERBOLA_PROBE_SOURCE_CIDRS": "10.8.0.0/28, 10.9.0.0/28"}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.DNSCIDRs, ",") != "169.254.20.10/32" || strings.Join(c.ProbeSourceCIDRs, ",") != "10.8.0.0/28,10.9.0.0/28" {
		t.Fatalf("set: %v %v", c.DNSCIDRs, c.ProbeSourceCIDRs)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"HYPERBOLA_DNS_CIDRS", "169.254.20.10", "not a CIDR"},
		{"HYPERBOLA_PROBE_SOURCE_CIDRS", "10.8.0.0/28,serverless", "not a CIDR"},
		{"HYPERBOLA_PROBE_SOURCE_CIDRS", "10.8.0.1/28", "write 10.8.0.0/28"},
	} {
		_, err := FromLookup(lookup(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: %v, want an error naming the variable and %q", tc.name, tc.value, err, tc.want)
		}
	}
}

func TestRedisCA(t *testing.T) {
	_, err := FromLookup(lookup(map[string]string{"HYPERBOLA_REDIS_CA": "/etc/redis/ca.pem"}))
	if err == nil || !strings.Contains(err.Error(), "HYPERBOLA_REDIS_CA") {
		t.Errorf("a path instead of PEM: %v", err)
	}
}

func TestProbeAndFailedKeyLimits(t *testing.T) {
	type want struct {
		probe, authFail int
		ttl             time.Duration
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want want
		bad  string // the variable the error names
	}{
		"defaults": {want: want{120, 30, 5 * time.Second}},
		"set": {env: map[string]string{"HYPERBOLA_PROBE_RATE_LIMIT": "600", "HYPERBOLA_AUTH_FAIL_LIMIT": "10", "HYPERBOLA_READY_CACHE_TTL": "2s"},
			want: want{600, 10, 2 * time.Second}},
		"zero probe limit":     {env: map[string]string{"HYPERBOLA_PROBE_RATE_LIMIT": "0"}, bad: "HYPERBOLA_*_RATE_LIMIT"},
		"negative fail limit":  {env: map[string]string{"HYPERBOLA_AUTH_FAIL_LIMIT": "-1"}, bad: "HYPERBOLA_AUTH_FAIL_LIMIT"},
		"fail limit not a num": {env: map[string]string{"HYPERBOLA_AUTH_FAIL_LIMIT": "lots"}, bad: "HYPERBOLA_AUTH_FAIL_LIMIT"},
		"ttl zero":             {env: map[string]string{"HYPERBOLA_READY_CACHE_TTL": "0s"}, bad: "HYPERBOLA_READY_CACHE_TTL"},
		"ttl over a minute":    {env: map[string]string{"HYPERBOLA_READY_CACHE_TTL": "2m"}, bad: "HYPERBOLA_READY_CACHE_TTL"},
		"ttl without a unit":   {env: map[string]string{"HYPERBOLA_READY_CACHE_TTL": "5"}, bad: "HYPERBOLA_READY_CACHE_TTL"},
	} {
		c, err := FromLookup(lookup(tc.env))
		switch {
		case tc.bad != "" && err == nil:
			t.Errorf("%s: accepted %v", name, tc.env)
		case tc.bad != "" && !strings.Contains(err.Error(), tc.bad):
			t.Errorf("%s: the error does not name %s: %v", name, tc.bad, err)
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.bad == "" && (want{c.ProbeRateLimit, c.AuthFailLimit, c.ReadyCacheTTL} != tc.want):
			t.Errorf("%s: %d %d %v, want %+v", name, c.ProbeRateLimit, c.AuthFailLimit, c.ReadyCacheTTL, tc.want)
		}
	}
}

func TestKubeBudgetsAndReadinessInterval(t *testing.T) {
	type want struct {
		writeQPS   float64
		writeBurst int
		readQPS    float64
		readBurst  int
		interval   time.Duration
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want want
		bad  string // the variable the error names
	}{
		"defaults": {want: want{300, 600, 50, 100, 25 * time.Millisecond}},
		"set": {env: map[string]string{"HYPERBOLA_KUBE_WRITE_QPS": "40.5", "HYPERBOLA_KUBE_WRITE_BURST": "80",
			"HYPERBOLA_KUBE_READ_QPS": "10", "HYPERBOLA_KUBE_READ_BURST": "10", "HYPERBOLA_READINESS_INTERVAL": "250ms"},
			want: want{40.5, 80, 10, 10, 250 * time.Millisecond}},
		"off":                   {env: map[string]string{"HYPERBOLA_READINESS_INTERVAL": "off"}, want: want{300, 600, 50, 100, ReadinessOff}},
		"zero write qps":        {env: map[string]string{"HYPERBOLA_KUBE_WRITE_QPS": "0"}, bad: "HYPERBOLA_KUBE_WRITE_QPS"},
		"negative read burst":   {env: map[string]string{"HYPERBOLA_KUBE_READ_BURST": "-1"}, bad: "HYPERBOLA_KUBE_READ_BURST"},
		"qps not a number":      {env: map[string]string{"HYPERBOLA_KUBE_READ_QPS": "fast"}, bad: "HYPERBOLA_KUBE_READ_QPS"},
		"burst under its qps":   {env: map[string]string{"HYPERBOLA_KUBE_READ_QPS": "200"}, bad: "HYPERBOLA_KUBE_*_BURST"},
		"interval zero":         {env: map[string]string{"HYPERBOLA_READINESS_INTERVAL": "0s"}, bad: "HYPERBOLA_READINESS_INTERVAL"},
		"interval negative":     {env: map[string]string{"HYPERBOLA_READINESS_INTERVAL": "-1s"}, bad: "HYPERBOLA_READINESS_INTERVAL"},
		"interval too long":     {env: map[string]string{"HYPERBOLA_READINESS_INTERVAL": "1m"}, bad: "HYPERBOLA_READINESS_INTERVAL"},
		"interval without unit": {env: map[string]string{"HYPERBOLA_READINESS_INTERVAL": "100"}, bad: "HYPERBOLA_READINESS_INTERVAL"},
	} {
		c, err := FromLookup(lookup(tc.env))
		switch {
		case tc.bad != "" && err == nil:
			t.Errorf("%s: accepted %v", name, tc.env)
		case tc.bad != "" && !strings.Contains(err.Error(), tc.bad):
			t.Errorf("%s: the error does not name %s: %v", name, tc.bad, err)
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.bad == "":
			if got := (want{c.KubeWriteQPS, c.KubeWriteBurst, c.KubeReadQPS, c.KubeReadBurst, c.ReadinessInterval}); got != tc.want {
				t.Errorf("%s: %+v, want %+v", name, got, tc.want)
			}
		}
	}
}

func TestWarmPath(t *testing.T) {
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WarmPlaceholders != 0 || c.WarmPrepull || c.PlaceholderPriorityClass != "hyperbola-placeholder" {
		t.Errorf("defaults: %d placeholders, prepull %v, class %q: the warm path must be off", c.WarmPlaceholders, c.WarmPrepull, c.PlaceholderPriorityClass)
	}
	c, err = FromLookup(lookup(map[string]string{"HYPERBOLA_WARM_PLACEHOLDERS": "4", "HYPERBOLA_WARM_PREPULL": "true",
		"HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS": "spare"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WarmPlaceholders != 4 || !c.WarmPrepull || c.PlaceholderPriorityClass != "spare" {
		t.Errorf("set: %+v", c)
	}
	for _, bad := range []map[string]string{
		{"HYPERBOLA_WARM_PLACEHOLDERS": "-1"},
		{"HYPERBOLA_WARM_PLACEHOLDERS": "1001"},
		{"HYPERBOLA_WARM_PLACEHOLDERS": "two"},
		{"HYPERBOLA_WARM_PREPULL": "sometimes"},
	} {
		if _, err := FromLookup(lookup(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The warm volume pool is off unless asked for; its volumes are the default size unless told.
func TestWarmVolumes(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		n    int
		size string
	}{
		"off by default":        {nil, 0, "5Gi"},
		"on, the default size":  {map[string]string{"HYPERBOLA_WARM_VOLUMES": "3", "HYPERBOLA_STORAGE_SIZE": "8Gi"}, 3, "8Gi"},
		"on, a size of its own": {map[string]string{"HYPERBOLA_WARM_VOLUMES": "2", "HYPERBOLA_WARM_VOLUME_SIZE": "10Gi"}, 2, "10Gi"},
	} {
		c, err := FromLookup(lookup(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.WarmVolumes != tc.n || c.WarmVolumeSize != tc.size {
			t.Errorf("%s: %d of %s, want %d of %s", name, c.WarmVolumes, c.WarmVolumeSize, tc.n, tc.size)
		}
	}
	if _, err := FromLookup(lookup(map[string]string{"HYPERBOLA_WARM_VOLUMES": "-1"})); err == nil || !strings.Contains(err.Error(), "HYPERBOLA_WARM_VOLUMES") {
		t.Errorf("a negative pool: %v", err)
	}
}

func TestRoutingSettings(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"HYPERBOLA_NAMESPACE": "ws"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Routing != RoutingIngress || c.GatewayName != "hyperbola" || c.GatewayNamespace != "ws" ||
		c.GatewayClass != "gke-l7-global-external-managed" || c.GatewayCertMap != "" || c.GatewayAddress != "" ||
		c.GatewayTLSSecret != "" || strings.Join(c.GatewaySourceCIDRs, ",") != "35.191.0.0/16,130.211.0.0/22" || c.KeepIngress {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = FromLookup(lookup(map[string]string{
		"HYPERBOLA_ROUTING": "Gateway", "HYPERBOLA_GATEWAY_NAME": "gw", "HYPERBOLA_GATEWAY_NAMESPACE": "edge",
		"HYPERBOLA_GATEWAY_CLASS": "hyperbola-local", "HYPERBOLA_GATEWAY_TLS_SECRET": "wild",
		"HYPERBOLA_GATEWAY_SOURCE_CIDRS": "10.0.0.0/8", "HYPERBOLA_KEEP_INGRESS": "true",
		"HYPERBOLA_ACTIVATOR_HOST": "api.run.app",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Routing != RoutingGateway || c.GatewayName != "gw" || c.GatewayNamespace != "edge" || c.GatewayClass != "hyperbola-local" ||
		c.GatewayTLSSecret != "wild" || strings.Join(c.GatewaySourceCIDRs, ",") != "10.0.0.0/8" || !c.KeepIngress {
		t.Fatalf("set: %+v", c)
	}
	// in gateway mode the activator's Service is plain HTTP even with a host
	if c.ActivatorPort != 80 {
		t.Errorf("gateway activator port %d, want 80", c.ActivatorPort)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HYPERBOLA_ROUTING": "nginx"}, "HYPERBOLA_ROUTING"},
		{map[string]string{"HYPERBOLA_KEEP_INGRESS": "maybe"}, "HYPERBOLA_KEEP_INGRESS"},
		{map[string]string{"HYPERBOLA_GATEWAY_SOURCE_CIDRS": "35.191.0.1/16"}, "HYPERBOLA_GATEWAY_SOURCE_CIDRS"},
		{map[string]string{"HYPERBOLA_ROUTING": "gateway", "HYPERBOLA_GATEWAY_CERTMAP": "m", "HYPERBOLA_GATEWAY_TLS_SECRET": "s"}, "HYPERBOLA_GATEWAY_CERTMAP"},
	} {
		_, err := FromLookup(lookup(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}
