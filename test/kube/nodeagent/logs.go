package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// GetContainerLogs serves a container's log (kubectl logs, client-go
// GetLogs): follow, previous, tailLines and limitBytes are honoured;
// timestamps and sinceSeconds/sinceTime are ignored.
func (p *provider) GetContainerLogs(ctx context.Context, ns, name, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	r := p.get(ns, name)
	if r == nil {
		return nil, errdefs.NotFoundf("pod %s/%s not found on node %s", ns, name, p.cfg.nodeName)
	}
	c := r.container(container)
	if c == nil {
		return nil, errdefs.InvalidInputf("container %s is not valid for pod %s", container, name)
	}
	r.mu.Lock()
	n := c.attempts
	reason := "ContainerCreating"
	if c.state.Waiting != nil && c.state.Waiting.Reason != "" {
		reason = c.state.Waiting.Reason
	}
	r.mu.Unlock()
	if n == 0 {
		// the kubelet's wording; the API server returns it as 400
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start: %s", container, name, reason)
	}
	idx := n - 1
	if opts.Previous {
		idx--
		if idx < 0 {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", container, name)
		}
	}
	f, err := os.Open(r.logPath(container, idx))
	if err != nil {
		return nil, errdefs.NotFoundf("log of %s: %v", container, err)
	}
	if opts.Tail > 0 {
		data, err := io.ReadAll(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		tail := lastLines(data, opts.Tail, len(data))
		if _, err := f.Seek(int64(len(data)-len(tail)), io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	var rc io.ReadCloser = f
	if opts.Follow {
		rc = &followReader{ctx: ctx, f: f, r: r, c: c, attempt: idx}
	}
	if opts.LimitBytes > 0 {
		rc = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(rc, int64(opts.LimitBytes)), rc}
	}
	return rc, nil
}

// followReader reads a log file until the container instance that writes it has exited.
type followReader struct {
	ctx     context.Context
	f       *os.File
	r       *podRun
	c       *ctr
	attempt int
}

func (fr *followReader) Read(b []byte) (int, error) {
	for {
		n, err := fr.f.Read(b)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		fr.r.mu.Lock()
		live := fr.c.attempts-1 == fr.attempt && fr.c.running
		changed := fr.r.changed
		fr.r.mu.Unlock()
		if !live {
			n, _ = fr.f.Read(b) // what was written just before the exit
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		select {
		case <-fr.ctx.Done():
			return 0, io.EOF
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (fr *followReader) Close() error { return fr.f.Close() }
