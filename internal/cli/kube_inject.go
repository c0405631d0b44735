//go:build !nokube

package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/kube/manifest"
)

type kubeInjectFlags struct {
	kube          kubeFlags
	filename      string
	pattern       string
	name          string
	replace       string
	gateSecret    string
	gateURLSecret string
}

func newKubeInjectCmd(g *globals) *cobra.Command {
	f := &kubeInjectFlags{}
	cmd := &cobra.Command{
		Use:   "inject -f FILE [flags] [-- COMMAND [ARGS...]]",
		Short: "Add the shiplock initContainer to the Deployments (and other pod templates) of a manifest",
		Long: `Read Kubernetes manifests (multi-document YAML, from a file or "-" for
stdin) and print them with shiplock's initContainer added to every pod
template: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs, Pods (also inside a List), or only those named --name.

Documents without a pod template are printed byte for byte as they were. A
changed document keeps its comments and key order. The initContainer is
named "shiplock": injecting again replaces it in place (a new --tag updates
it) and, with the same flags, changes nothing. --replace NAME puts it in
place of an existing initContainer, such as the old "nc -z && goose up" one.

--pattern init (the default) runs "shiplock up" in every pod, before the
app: replicas take turns through shiplock's lock. --pattern gate runs
"shiplock await" instead: the pods wait until a Job (shiplock kube job) has
migrated the schema to the newest migration their image carries; give it
read-only credentials with --gate-secret or --gate-url-secret. Arguments
after "--" replace the initContainer's command.

Without --tag, and when --image has none, the tag of the pod's first tagged
container (the app's) is used: the migration image is built with the app's
tag.

A pod template injected by Linkerd (linkerd.io/inject: enabled) or Istio
(sidecar.istio.io/inject: "true", istio.io/rev), or any with --mesh
linkerd|istio (the namespace injects), gets the database port added to
config.linkerd.io/skip-outbound-ports or
traffic.sidecar.istio.io/excludeOutboundPorts: an initContainer runs before
the proxy it would otherwise be redirected to.`,
		Example: `  # The accounts Deployment, migrating in every pod before the app starts.
  shiplock kube inject -f deployment.yaml \
    --image registry.example.com/accounts-migrations \
    --db-host postgres.accounts.svc --db-name accounts --secret account-secret \
    | kubectl apply -f -

  # Job + gate: the pods only wait for the schema, with read-only credentials.
  kustomize build overlays/prod | shiplock kube inject -f - --pattern gate \
    --image registry.example.com/accounts-migrations \
    --db-host postgres.accounts.svc --db-name accounts \
    --gate-secret account-readonly-secret`,
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, g, args) },
	}
	fs := cmd.Flags()
	f.kube.register(fs, "auto", "service mesh of the pods: auto (from each pod template's annotations and labels), none, linkerd or istio (the namespace injects)")
	fs.StringVarP(&f.filename, "filename", "f", "", `manifests to inject into; "-" reads stdin (required)`)
	fs.StringVar(&f.pattern, "pattern", "init", "init: the initContainer migrates (shiplock up); gate: it waits for the schema a Job migrates (shiplock await)")
	fs.StringVar(&f.name, "name", "", "inject only into the workloads of this name")
	fs.StringVar(&f.replace, "replace", "", "replace the existing initContainer of this name")
	fs.StringVar(&f.gateSecret, "gate-secret", "", "--pattern gate: Secret with read-only credentials (same keys as --secret)")
	fs.StringVar(&f.gateURLSecret, "gate-url-secret", "", "--pattern gate: SECRET:KEY holding a read-only connection string")
	return cmd
}

func (f *kubeInjectFlags) options(cmd *cobra.Command, g *globals, args []string) (manifest.InjectOptions, error) {
	if f.filename == "" {
		return manifest.InjectOptions{}, usagef(`-f is required: the manifests to inject into, or "-" for stdin`)
	}
	if err := checkShiplockArgs(args); err != nil {
		return manifest.InjectOptions{}, err
	}
	o, err := f.kube.options(cmd, g, args)
	if err != nil {
		return manifest.InjectOptions{}, err
	}
	pattern, err := manifest.ParsePattern(f.pattern)
	if err != nil {
		return manifest.InjectOptions{}, usagef(fmt.Sprintf("--pattern %q: want init or gate", f.pattern))
	}
	gate := manifest.Credentials{Secret: f.gateSecret}
	if f.gateSecret != "" {
		gate.UserKey, gate.PasswordKey = f.kube.userKey, f.kube.passwordKey
	}
	if gate.URLSecret, err = parseSecretKey("--gate-url-secret", f.gateURLSecret); err != nil {
		return manifest.InjectOptions{}, err
	}
	return manifest.InjectOptions{Options: o, Pattern: pattern, Gate: gate, Name: f.name, Replace: f.replace}, nil
}

func (f *kubeInjectFlags) run(cmd *cobra.Command, g *globals, args []string) error {
	opts, err := f.options(cmd, g, args)
	if err != nil {
		return err
	}
	in, source, err := f.read(g)
	if err != nil {
		return err
	}
	out, err := manifest.Inject(in, opts)
	if err != nil {
		return kubeError(err, source)
	}
	if opts.Pattern == manifest.PatternGate && f.gateSecret == "" && f.gateURLSecret == "" {
		fmt.Fprintln(g.streams.Err, "warning: the gate uses the migration's credentials; read-only ones suffice for shiplock await (--gate-secret or --gate-url-secret)")
	}
	_, err = g.streams.Out.Write(out)
	return err
}

func (f *kubeInjectFlags) read(g *globals) ([]byte, string, error) {
	if f.filename == "-" {
		if g.streams.In == nil {
			return nil, "", usagef("-f -: no standard input")
		}
		b, err := io.ReadAll(g.streams.In)
		if err != nil {
			return nil, "", fmt.Errorf("read stdin: %w", err)
		}
		return b, "stdin", nil
	}
	b, err := os.ReadFile(f.filename)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, "", usagef(fmt.Sprintf("-f %s: no such file", f.filename))
		}
		return nil, "", fmt.Errorf("read manifests: %w", err)
	}
	return b, f.filename, nil
}
