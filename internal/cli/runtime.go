package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/mesh"
	"github.com/shiplock/shiplock/migrate"
)

// waitFlags control the readiness wait before a command's first query.
type waitFlags struct {
	timeout   time.Duration
	missingDB bool
}

func (f *waitFlags) register(fs *pflag.FlagSet, def time.Duration) {
	fs.DurationVar(&f.timeout, "wait-timeout", def, "wait this long for the database to accept connections (connect, authenticate, SELECT 1); 0: try once (exit 6 when not ready)")
	fs.BoolVar(&f.missingDB, "wait-missing-db", false, "keep waiting while the database does not exist yet, instead of failing at once (exit 5)")
}

func (f *waitFlags) options(g *globals) dbwait.Options {
	o := dbwait.Options{Timeout: f.timeout, RetryMissingDatabase: f.missingDB, Logger: g.log}
	if f.timeout == 0 {
		o.Timeout = -1 // one attempt
	}
	return o
}

// runFlags are the flags of commands that change the database and may be
// a container's whole command.
type runFlags struct {
	engine          engineFlags
	wait            waitFlags
	terminationLog  string
	sidecarShutdown string
	waitProxy       string
	stopGrace       time.Duration
	proxyTimeout    time.Duration
	// Proxy admin ports, "" for SHIPLOCK_LINKERD_ADMIN_PORT /
	// SHIPLOCK_ISTIO_STATUS_PORT or the proxies' defaults.
	linkerdAdminPort string
	istioStatusPort  string
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	f.engine.register(fs)
	f.wait.register(fs, 2*time.Minute)
	fs.StringVar(&f.terminationLog, "termination-log", "", "write a one-line summary here, never through a symbolic link (default /dev/termination-log when it exists and is writable; env SHIPLOCK_TERMINATION_LOG)")
	fs.StringVar(&f.sidecarShutdown, "sidecar-shutdown", "none", "after the run, success or failure, ask the mesh proxy to exit so a Job can complete: auto, linkerd (POST :4191/shutdown, see --linkerd-admin-port; the pod needs config.linkerd.io/proxy-admin-shutdown: enabled), istio (POST :15020/quitquitquit, see --istio-status-port) or none. Never in an initContainer")
	fs.StringVar(&f.waitProxy, "wait-proxy", "none", "before connecting, wait for the mesh proxy to be ready: auto, linkerd, istio or none")
	fs.DurationVar(&f.stopGrace, "stop-grace", 15*time.Second, "on SIGTERM or SIGINT, start no further statement and give the one running this long to finish before cancelling it; what completed is recorded and the exit code is retryable (keep it under the pod's terminationGracePeriodSeconds, 30 s by default)")
	fs.DurationVar(&f.proxyTimeout, "wait-proxy-timeout", mesh.DefaultReadyTimeout, "give up waiting for the mesh proxy after this long: exit 2 when none listens (the pod has no proxy), 6 when it never became ready; 0 waits without limit")
	fs.StringVar(&f.linkerdAdminPort, "linkerd-admin-port", "", "port of the Linkerd proxy's admin server, when the pod sets config.linkerd.io/admin-port (env SHIPLOCK_LINKERD_ADMIN_PORT, default 4191)")
	fs.StringVar(&f.istioStatusPort, "istio-status-port", "", "port of Istio's pilot-agent status server, when the pod sets status.sidecar.istio.io/port (env SHIPLOCK_ISTIO_STATUS_PORT, default 15020)")
}

// meshConfig says where the mesh proxies listen: the flags, else the env
// vars, else the proxies' default ports.
func (f *runFlags) meshConfig(g *globals) (mesh.Config, error) {
	cfg := mesh.Config{Logger: g.log}
	for _, p := range []struct {
		flag, env, val string
		dst            *string
	}{
		{"linkerd-admin-port", "SHIPLOCK_LINKERD_ADMIN_PORT", f.linkerdAdminPort, &cfg.LinkerdAdmin},
		{"istio-status-port", "SHIPLOCK_ISTIO_STATUS_PORT", f.istioStatusPort, &cfg.IstioAgent},
	} {
		v, from := p.val, "--"+p.flag
		if v == "" {
			v, from = g.streams.getenv(p.env), p.env
		}
		if v == "" {
			continue // the package's default
		}
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return cfg, usagef(fmt.Sprintf("%s: %q is not a port number (1-65535)", from, v))
		}
		*p.dst = mesh.LocalURL(port)
	}
	return cfg, nil
}

// mutate runs a command that changes the database: files first, then the
// wait, then fn; the result goes to stdout and the termination log.
func (g *globals) mutate(ctx context.Context, f *runFlags, output string, fn func(*migrate.Migrator) (*migrate.Result, error)) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	shutdown, err := mesh.ParseKind(f.sidecarShutdown)
	if err != nil {
		return usagef("--sidecar-shutdown: " + err.Error())
	}
	waitProxy, err := mesh.ParseKind(f.waitProxy)
	if err != nil {
		return usagef("--wait-proxy: " + err.Error())
	}
	if f.stopGrace <= 0 {
		return usagef("--stop-grace must be positive")
	}
	meshCfg, err := f.meshConfig(g)
	if err != nil {
		return err
	}
	var res *migrate.Result
	opts, err := f.engine.options(g)
	opts.Stop, opts.StopGrace = g.streams.Stop, f.stopGrace
	g.stopGrace.Store(int64(f.stopGrace))
	if err == nil && waitProxy != mesh.None {
		var what string
		cfg := meshCfg
		cfg.ReadyTimeout = cmp.Or(f.proxyTimeout, -1)
		what, err = mesh.WaitReady(ctx, waitProxy, cfg)
		err = proxyWaitError(err)
		if err == nil {
			g.log.Info(what)
		}
	}
	if err == nil {
		err = g.withMigrator(ctx, opts, &f.wait, func(m *migrate.Migrator) error {
			var err error
			res, err = fn(m)
			printResult(g.streams.Out, output, res, err)
			return err
		})
	}
	g.writeTerminationLog(f.terminationLog, res, err)
	if shutdown != mesh.None {
		// After success or failure alike, or the Job never completes.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		what, serr := mesh.Shutdown(sctx, shutdown, meshCfg)
		cancel()
		if serr != nil {
			g.log.Error("sidecar shutdown", "err", serr)
		} else {
			g.log.Info(what)
		}
	}
	return err
}

// terminationLogMax is what the kubelet keeps of a termination message.
const terminationLogMax = 4096

// writeTerminationLog writes the run's outcome where Kubernetes shows it in
// "kubectl describe pod": the explicit path, SHIPLOCK_TERMINATION_LOG, or
// /dev/termination-log when it exists. A symbolic link there is never
// followed. A failure to write is only logged.
func (g *globals) writeTerminationLog(path string, res *migrate.Result, runErr error) {
	if path == "" {
		path = g.streams.getenv("SHIPLOCK_TERMINATION_LOG")
	}
	if path == "" {
		const def = "/dev/termination-log"
		if _, err := os.Stat(def); err != nil {
			return
		}
		path = def
	}
	msg := g.terminationMessage(res, runErr)
	msg = g.redact(msg)
	if len(msg) > terminationLogMax {
		msg = msg[:terminationLogMax-3]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "..."
	}
	if err := writeNoFollow(path, []byte(msg)); err != nil {
		g.log.Warn("write termination log", "path", path, "err", err)
	}
}

func (g *globals) terminationMessage(res *migrate.Result, err error) string {
	if res == nil {
		res = &migrate.Result{}
		if err == nil {
			return "ok"
		}
		return fmt.Sprintf("exit %d: %s", int(g.exitCode(err)), g.errorText(err))
	}
	if err == nil {
		return summary(res, nil)
	}
	var exit *exitError
	if errors.As(err, &exit) {
		return summary(res, nil)
	}
	return fmt.Sprintf("%s; exit %d: %s", summary(res, err), int(g.exitCode(err)), g.errorText(err))
}

// proxyWaitError classifies a failed wait for the mesh proxy. Nothing
// listening for the whole wait means the pod has no proxy (not injected,
// or the wrong mesh named): a rerun cannot help, so it is a configuration
// error (exit 2). A proxy that answers but is not ready in time is
// retryable (exit 6, through the deadline the error wraps).
func proxyWaitError(err error) error {
	var nr *mesh.NotReadyError
	if errors.As(err, &nr) && errors.Is(err, mesh.ErrNoProxy) && errors.Is(err, context.DeadlineExceeded) {
		return usagef(err.Error() + "; where the pod has no mesh, run without --wait-proxy")
	}
	return err
}
