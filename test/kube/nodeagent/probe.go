package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runProbes runs c's startup, readiness and liveness probes against one
// instance until ctx ends (the instance exited), with the kubelet's rules:
// readiness and liveness start once the startup probe has succeeded; a
// container is started when its startup probe succeeds, ready after
// successThreshold readiness successes and unready after failureThreshold
// failures; failureThreshold startup or liveness failures kill the instance
// (which then restarts according to the restart policy).
func (r *podRun) runProbes(ctx context.Context, c *ctr, in *instance) {
	if sp := c.spec.StartupProbe; sp != nil {
		ok := r.probeLoop(ctx, c, sp, "Startup", func(success bool, fails, _ int) bool {
			if success {
				r.mu.Lock()
				c.started = true
				r.publishLocked()
				r.mu.Unlock()
				return false
			}
			if fails >= int(sp.FailureThreshold) {
				r.killForProbe(c, in, sp, "Startup")
				return false
			}
			return true
		})
		if !ok {
			return
		}
		r.mu.Lock()
		started := c.started
		r.mu.Unlock()
		if !started {
			return
		}
	}
	if rp := c.spec.ReadinessProbe; rp != nil {
		go r.probeLoop(ctx, c, rp, "Readiness", func(success bool, fails, successes int) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			switch {
			case success && !c.probeReady && successes >= int(max(rp.SuccessThreshold, 1)):
				c.probeReady = true
				r.publishLocked()
			case !success && c.probeReady && fails >= int(max(rp.FailureThreshold, 1)):
				c.probeReady = false
				r.publishLocked()
			}
			return true
		})
	}
	if lp := c.spec.LivenessProbe; lp != nil {
		go r.probeLoop(ctx, c, lp, "Liveness", func(success bool, fails, _ int) bool {
			if !success && fails >= int(max(lp.FailureThreshold, 1)) {
				r.killForProbe(c, in, lp, "Liveness")
				return false
			}
			return true
		})
	}
}

func (r *podRun) killForProbe(c *ctr, in *instance, p *corev1.Probe, what string) {
	grace := r.podGrace()
	if p.TerminationGracePeriodSeconds != nil {
		grace = max(time.Duration(*p.TerminationGracePeriodSeconds)*time.Second, minGrace)
	}
	msg := fmt.Sprintf("Container %s failed %s probe, will be restarted", c.spec.Name, strings.ToLower(what))
	log.L.Infof("nodeagent: pod %s: %s", r.key(), msg)
	r.event(corev1.EventTypeNormal, "Killing", msg)
	in.kill(grace)
}

// probeLoop probes every periodSeconds after initialDelaySeconds (the first
// probe right away otherwise) and calls on with the result and the
// consecutive failure and success counts, until on returns false (result
// true) or ctx ends (result false).
func (r *podRun) probeLoop(ctx context.Context, c *ctr, p *corev1.Probe, what string, on func(success bool, fails, successes int) bool) bool {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	fails, successes := 0, 0
	var lastErr string
	for {
		err := r.probeOnce(ctx, c, p)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			successes, fails = successes+1, 0
			lastErr = ""
		} else {
			fails, successes = fails+1, 0
			if err.Error() != lastErr {
				log.L.Infof("nodeagent: pod %s container %s: %s probe failed: %v", r.key(), c.spec.Name, what, err)
				lastErr = err.Error()
			}
		}
		if !on(err == nil, fails, successes) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(period):
		}
	}
}

// probeOnce runs a probe once; nil means success.
func (r *podRun) probeOnce(ctx context.Context, c *ctr, p *corev1.Probe) error {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.mu.Lock()
	env, dir, mounts, runcID := c.env, c.dir, c.mounts, c.runcID
	r.mu.Unlock()
	switch {
	case p.Exec != nil:
		var cmd *exec.Cmd
		if id := runcID; id != "" {
			// In the container, with its environment, as the kubelet's exec does.
			cmd = r.p.runcCmd(ctx, append([]string{"exec", id}, expandAll(p.Exec.Command, env)...)...)
		} else {
			argv, err := r.p.resolveCommand(c.spec.Image, rewriteArgs(expandAll(p.Exec.Command, env), mounts))
			if err != nil {
				return err
			}
			cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env, cmd.Dir = envList(env), dir
		}
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return fmt.Errorf("command timed out after %s", timeout)
		}
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := r.probePort(c, g.Port)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = r.p.hostIP
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		u, err = u.Parse(path)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		req.Header.Set("Accept", "*/*")
		for _, h := range g.HTTPHeaders {
			if strings.EqualFold(h.Name, "Host") {
				req.Host = h.Value
				continue
			}
			req.Header.Set(h.Name, h.Value)
		}
		client := &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, //nolint:gosec // as the kubelet
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if req.URL.Hostname() != u.Hostname() || len(via) >= 10 {
					return http.ErrUseLastResponse // the kubelet counts an off-host redirect as success
				}
				return nil
			},
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := r.probePort(c, p.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = r.p.hostIP
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.GRPC != nil:
		return fmt.Errorf("nodeagent: gRPC probes are not supported")
	}
	return fmt.Errorf("probe has no handler")
}

// probePort resolves a probe's port (a number or the name of a container
// port) and sends it to the pod's own port when it was remapped.
func (r *podRun) probePort(c *ctr, p intstr.IntOrString) (int, error) {
	port := 0
	if p.Type == intstr.Int {
		port = p.IntValue()
	} else {
		for _, cp := range c.spec.Ports {
			if cp.Name == p.StrVal {
				port = int(cp.ContainerPort)
			}
		}
		if port == 0 {
			if n, err := strconv.Atoi(p.StrVal); err == nil {
				port = n
			} else {
				return 0, fmt.Errorf("couldn't find port %q in container %s", p.StrVal, c.spec.Name)
			}
		}
	}
	return r.remapPort(port), nil
}
