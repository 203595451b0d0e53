// Package datapath proves, on the local cluster's real node, what Hyperbola promises about a
// user's files: that they survive sleep and wake byte for byte, that a delete's zip is the
// workspace's tree, that the backup reads the volume only once the workspace's pod is gone,
// and that a backup that cannot finish (an unreadable file, a full backup volume, its
// deadline) loses nothing and leaves nothing behind. It also runs the idle sweep against the
// real code-server's heartbeat.
//
// Its tests run real code-server and backup containers (images/) with Hyperbola's exact pod
// specs on real volumes, and compare checksummed trees, never only states. The package has no
// code of its own: it is a home for the tests that need the whole data path at once
// (`go test ./internal/datapath`, part of `make test`; skipped with -short).
package datapath
