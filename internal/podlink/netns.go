package podlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// netns is one network namespace: a file that refers to it (a runtime's bind mount, or a
// process's /proc/<pid>/ns/net) and its identity (the namespace's inode), which tells whether
// the file still refers to the same namespace.
type netns struct {
	path string
	id   nsID
}

// nsID identifies a network namespace: the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

// errNoNetns says no network namespace on this host holds an address: the pod runs on
// another node (a fake one), or its network is not set up yet.
var errNoNetns = errors.New("no network namespace on this host holds the pod's address")

// hostNetns finds pods' network namespaces on this host by their addresses.
type hostNetns struct {
	// dir holds the runtime's namespace files; "" = every process's namespace (/proc).
	dir string

	mu    sync.Mutex
	addrs map[nsID][]netip.Addr // namespaces already read that had an address
}

func newHostNetns(dir string) *hostNetns {
	return &hostNetns{dir: dir, addrs: map[nsID][]netip.Addr{}}
}

// find returns the network namespace that has ip on one of its interfaces. A namespace's
// addresses are read once (joining it on a throwaway thread); one with no address yet (its
// network is still being set up) is read again next time.
func (h *hostNetns) find(ip netip.Addr) (netns, error) {
	all, err := h.candidates()
	if err != nil {
		return netns{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[nsID]bool, len(all))
	var found netns
	for _, ns := range all {
		seen[ns.id] = true
		addrs, ok := h.addrs[ns.id]
		if !ok {
			if addrs, err = readAddrs(ns.path); err != nil || len(addrs) == 0 {
				continue // gone meanwhile, or not set up yet
			}
			h.addrs[ns.id] = addrs
		}
		for _, a := range addrs {
			if a == ip {
				found = ns
			}
		}
	}
	for id := range h.addrs {
		if !seen[id] {
			delete(h.addrs, id) // a namespace that is gone
		}
	}
	if found.path == "" {
		return netns{}, errNoNetns
	}
	return found, nil
}

// current reports whether ns.path still refers to the namespace ns.id (a runtime unmounts a
// pod's namespace when the pod's sandbox goes; a new sandbox gets a new one).
func (h *hostNetns) current(ns netns) bool {
	id, err := statNetns(ns.path)
	return err == nil && id == ns.id
}

// listen opens a TCP listener at addr inside ns: see inNetns.
func (h *hostNetns) listen(ns netns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns.path, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// candidates lists the network namespaces to search, one file per namespace.
func (h *hostNetns) candidates() ([]netns, error) {
	if h.dir != "" {
		entries, err := os.ReadDir(h.dir)
		if err != nil {
			return nil, fmt.Errorf("reading the network namespaces in %s: %w", h.dir, err)
		}
		out := make([]netns, 0, len(entries))
		for _, e := range entries {
			p := filepath.Join(h.dir, e.Name())
			if id, err := statNetns(p); err == nil {
				out = append(out, netns{path: p, id: id})
			}
		}
		return out, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	// lowest pid first: a pod's first process (its sandbox's pause) lives as long as the pod,
	// so the path found stays valid while the namespace does
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	seen := map[nsID]bool{}
	var out []netns
	for _, pid := range pids {
		p := filepath.Join("/proc", strconv.Itoa(pid), "ns", "net")
		id, err := statNetns(p)
		if err != nil || seen[id] {
			continue // the process is gone, or its namespace is listed already
		}
		seen[id] = true
		out = append(out, netns{path: p, id: id})
	}
	return out, nil
}

// statNetns returns the identity of the network namespace that path refers to, or an error
// when path is no namespace (say a runtime's leftover file whose mount is gone).
func statNetns(path string) (nsID, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nsID{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return nsID{}, fmt.Errorf("%s is not a namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// readAddrs returns the addresses on the interfaces of the network namespace at path, but
// loopback's.
func readAddrs(path string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := inNetns(path, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("addresses in %s: %w", path, err)
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.Unmap().IsLoopback() {
				out = append(out, ip.Unmap())
			}
		}
		return nil
	})
	return out, err
}

// inNetns runs fn on an OS thread that has joined the network namespace at path, so the
// sockets fn opens belong to that namespace (a socket keeps the namespace it was made in:
// once made, it is used from any goroutine, and a dial from any other goroutine stays in this
// host's namespace).
//
// The thread goes back to the host's namespace before it is unlocked, and is reused as any
// other. It must not end instead: a child process started with Pdeathsig (the test
// harness's redis-server and cluster) is killed when the THREAD that started it ends, and
// the runtime may have started one from this very thread. Only when the switch back fails
// is the thread left locked, so that the runtime ends it rather than let another goroutine
// run in the pod's namespace.
func inNetns(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer home.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("joining network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// left locked: the runtime ends this thread with the goroutine
			errc <- errors.Join(ferr, fmt.Errorf("returning to the host's network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
