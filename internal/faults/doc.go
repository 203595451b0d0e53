// Package faults is the fault-injection suite of the session lifecycle: on the real local
// parts (the local cluster with its real node and kwok nodes, redis-server, the Firestore
// emulator) it injects errors and stalls in front of the kube-apiserver, stops and restarts
// Redis, stops Firestore, and cuts the control plane at every step boundary of create, sleep,
// wake and delete, under concurrent load. Every session must converge (running, sleeping,
// deleted, or failed with a reason) and no file may be lost: live trees are compared by
// checksum with what was written, deleted ones with their archive.
//
// The package has no code of its own (`go test ./internal/faults`, part of `make test`;
// skipped with -short). Its last lines are the suite's counts: operations, faults injected,
// sessions converged, files checked, bytes lost.
package faults
