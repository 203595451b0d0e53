// Package clientip decides a request's client address behind trusted proxies, one rule for
// the API's rate limits and the activator's: HYPERBOLA_TRUSTED_PROXIES serves both.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrusted reads trusted proxies: CIDRs ("10.0.0.0/8") or single addresses.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Of is the client's address: the direct peer, or, when the peer is a trusted proxy, the
// first address from the right of X-Forwarded-For that is not a trusted proxy. A hop that
// cannot be read stops the walk at the last trusted one.
func Of(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := Peer(r)
	if !peer.IsValid() || !Trusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		ip = a.Unmap()
		if !Trusted(ip, trusted) {
			return ip
		}
	}
	return ip
}

// Peer is the direct peer's address (invalid when RemoteAddr cannot be read).
func Peer(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// Trusted reports whether ip is in one of the trusted prefixes.
func Trusted(ip netip.Addr, trusted []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
