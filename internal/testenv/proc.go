package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreePort returns a free TCP port on 127.0.0.1 below the kernel's ephemeral range: a port
// inside that range can be taken meanwhile as the source port of an outgoing connection.
func FreePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	for range 200 {
		p := 10000 + rand.IntN(lo-10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port found below %d", lo)
}

// startChild starts a long-running child that dies with this process (Pdeathsig).
func startChild(name string, args []string, logPath string, env ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", logPath, err)
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return cmd, nil
}

// stopChild sends SIGTERM to the child's process group, then SIGKILL after grace.
func stopChild(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// waitFor polls check until it succeeds, the child exits, or timeout passes.
func waitFor(ctx context.Context, what string, timeout time.Duration, cmd *exec.Cmd, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		if cmd != nil && cmd.ProcessState != nil {
			return fmt.Errorf("%s exited: %v", what, cmd.ProcessState)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %w", what, timeout, last)
}

func httpOK(url string) func() error {
	c := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// server is a program the tests start on a free loopback port, logging into dir.
type server struct {
	what, bin, dir, log string
	tries               int           // how many ports to try: one can be taken between FreePort and the bind
	patience            time.Duration // how long one start may take to answer
	args                func(port string) []string
	ready               func(addr string) func() error
}

// start starts the server and waits until it answers; it returns its address and process.
// When every try fails, dir is removed and the error carries the server's log.
func (s server) start(ctx context.Context) (string, *exec.Cmd, error) {
	var lastErr error
	for range s.tries {
		port, err := FreePort()
		if err != nil {
			return "", nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd, err := startChild(s.bin, s.args(strconv.Itoa(port)), filepath.Join(s.dir, s.log))
		if err != nil {
			return "", nil, err
		}
		if lastErr = waitFor(ctx, s.what, s.patience, cmd, s.ready(addr)); lastErr == nil {
			return addr, cmd, nil
		}
		stopChild(cmd, 2*time.Second)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, s.log))
	_ = os.RemoveAll(s.dir)
	return "", nil, fmt.Errorf("starting %s: %w\n%s", s.what, lastErr, log)
}
