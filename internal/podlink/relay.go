package podlink

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// serve accepts pl's connections until its listener is closed, relaying each to Target.
func (l *Link) serve(ctx context.Context, pl *podListener) {
	for {
		c, err := pl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// too many open files and the like: wait rather than spin
			l.log.Warn("accept failed", "pod", pl.pod.Name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.relay(ctx, pl, c)
		}()
	}
}

// relay copies between c (in the pod's namespace) and a new connection to Target (dialled
// from this goroutine, so in this host's namespace) until both sides are done or ctx ends.
func (l *Link) relay(ctx context.Context, pl *podListener, c net.Conn) {
	defer c.Close()
	d := net.Dialer{Timeout: dialTimeout}
	t, err := d.DialContext(ctx, "tcp", l.opts.Target)
	if err != nil {
		l.log.Warn("dial to the target failed", "pod", pl.pod.Name, "err", err)
		return
	}
	defer t.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = t.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(t, c) }()
	go func() { defer wg.Done(); pipe(c, t) }()
	wg.Wait()
}

// pipe copies src to dst, then passes the end of src on (a half close), so a client that
// closes its sending side still reads the whole answer.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
