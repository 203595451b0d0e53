package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Memorystore with AUTH and in-transit encryption, played by Debian's redis-server (built
// with TLS) with requirepass and a TLS port whose certificate a CA of the test's signs for
// 127.0.0.1, as Memorystore's names its IP address.
func TestRedisAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t, "hyperbola test CA")
	writeServerCert(t, dir, ca, caKey)
	other, _ := newCA(t, "someone else's CA")
	plain, tlsAddr := startAuthTLSRedis(t, dir, "s3cret-auth-string")

	ping := func(o RedisOptions) error {
		rdb, err := NewRedisClient(o)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rdb.Close() }()
		return New(rdb, "t:", Options{}).Ping(t.Context())
	}
	for _, tc := range []struct {
		name string
		o    RedisOptions
		want string // "" = the ping succeeds
	}{
		{"TLS and the password", RedisOptions{Addr: tlsAddr, Password: "s3cret-auth-string", CA: pemOf(ca)}, ""},
		{"plain TCP and the password", RedisOptions{Addr: plain, Password: "s3cret-auth-string"}, ""},
		{"a wrong password", RedisOptions{Addr: tlsAddr, Password: "guess", CA: pemOf(ca)}, "WRONGPASS"},
		{"no password", RedisOptions{Addr: tlsAddr, CA: pemOf(ca)}, "NOAUTH"},
		{"an untrusted CA", RedisOptions{Addr: tlsAddr, Password: "s3cret-auth-string", CA: pemOf(other)}, "certificate signed by unknown authority"},
		{"a name the certificate lacks", RedisOptions{Addr: strings.Replace(tlsAddr, "127.0.0.1", "localhost", 1), Password: "s3cret-auth-string", CA: pemOf(ca)}, "wanted to match localhost"},
	} {
		err := ping(tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		case tc.want != "":
			t.Logf("%s: %v", tc.name, err)
		}
	}

	// and the store works over it
	rdb, err := NewRedisClient(RedisOptions{Addr: tlsAddr, Password: "s3cret-auth-string", CA: pemOf(ca)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(t.Context(), "t:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(t.Context(), "t:k").Result(); err != nil || v != "v" {
		t.Fatalf("get over TLS: %q %v", v, err)
	}
}

func TestNewRedisClientRefusesABadCA(t *testing.T) {
	if _, err := NewRedisClient(RedisOptions{Addr: "10.0.0.3:6378", CA: []byte("/etc/ca.pem")}); err == nil {
		t.Error("a CA with no PEM in it was accepted")
	}
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// writeServerCert writes server.crt and server.key, for 127.0.0.1, and ca.crt into dir.
func writeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":     pemOf(ca),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// startAuthTLSRedis starts redis-server with password on a plain and a TLS port (the
// certificates in dir), stopped when t ends, and returns both addresses once it answers.
func startAuthTLSRedis(t *testing.T, dir, password string) (plain, tlsAddr string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not found (apt-get install -y redis-server): %v", err)
	}
	ports := [2]int{}
	for i := range ports {
		if ports[i], err = testenv.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	plain, tlsAddr = "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--tls-port", strconv.Itoa(ports[1]),
		"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "no",
		"--requirepass", password, "--save", "", "--appendonly", "no", "--dir", dir)
	log, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err := <-exited; err != nil {
			t.Logf("redis-server: %v (killed)", err)
		}
	})
	// ready when the TLS port answers the password; a server that exits (a build without
	// TLS refuses --tls-port) fails at once with its log
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := NewRedisClient(RedisOptions{Addr: tlsAddr, Password: password, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last := rdb.Ping(ctx).Err()
		if last == nil {
			return plain, tlsAddr
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server exited (%v):\n%s", err, out)
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("redis-server on %s did not answer: %w", tlsAddr, last))
		case <-tick.C:
		}
	}
}
