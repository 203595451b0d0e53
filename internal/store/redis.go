package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions say how to reach Redis: a local server in plain TCP, or Memorystore with AUTH
// and in-transit encryption (server authentication).
type RedisOptions struct {
	Addr     string // host:port
	Password string // the AUTH string; "" sends none
	DB       int
	// CA is the PEM of the CAs that verify the server's certificate. Set, the client speaks
	// TLS 1.2 or later and checks the certificate against Addr's host (an IP address, as
	// Memorystore's, is checked against the certificate's IP addresses); empty, plain TCP.
	CA []byte
}

// Timeouts of every Redis call: an answer takes milliseconds, so a stuck connection fails
// the request instead of holding it.
const redisTimeout = 3 * time.Second

// NewRedisClient returns a client for o. Nothing is contacted yet: a wrong password
// (WRONGPASS, or NOAUTH without one) or a certificate the CA does not verify fails the first
// call, such as Store.Ping.
func NewRedisClient(o RedisOptions) (*redis.Client, error) {
	opts := &redis.Options{
		Addr: o.Addr, Password: o.Password, DB: o.DB,
		DialTimeout: redisTimeout, ReadTimeout: redisTimeout, WriteTimeout: redisTimeout,
	}
	if len(o.CA) > 0 {
		host, _, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return nil, fmt.Errorf("redis address %q: %w", o.Addr, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CA) {
			return nil, errors.New("redis CA: no PEM certificate in it")
		}
		opts.TLSConfig = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(opts), nil
}
