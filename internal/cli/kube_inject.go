//go:build !nokube

package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/kube/manifest"
)

type kubeInjectFlags struct {
	kube          kubeFlags
	filename      string
	pattern       string
	name          string
	selects       []string
	labels        string
	all           bool
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
stdin) and print them with shiplock's initContainer added to the pod
template of the workloads selected: --select KIND/NAME (repeatable, e.g.
deployment/accounts) and -l LABEL=VALUE (the workload's own labels, in
kubectl's syntax). Without either, the input must hold one workload
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, also
inside a List), or --all injects into every one. Each workload changed is
named on stderr ("injected into Deployment/accounts"); nothing selected is
a usage error.

Documents without a pod template are printed byte for byte as they were. A
changed document keeps its comments and key order. The initContainer is
named "shiplock": injecting again replaces it in place (a new --tag updates
it) and, with the same flags, changes nothing. --replace NAME puts it in
place of an existing container, such as the old "nc -z && goose up"
initContainer, or the goose container of a migration Job (shiplock then is
the Job's container); a selected workload without it is an error.

--tag, --image-pull-policy and kube job's --namespace also take an envsubst
placeholder ('$TAG', '${NAMESPACE}'), kept verbatim in the output so that a
pipeline that runs envsubst on its templates keeps working.

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
the proxy it would otherwise be redirected to. The bypass is pod-wide: the
app's own database traffic leaves the mesh too. A template whose proxy is a
native sidecar (config.beta.linkerd.io/proxy-enable-native-sidecar or
sidecar.istio.io/nativeSidecar "true") needs none and gets none; where the
namespace or the mesh's install turns native sidecars on, use --mesh none.
See docs/patterns.md.`,
		Example: `  # The accounts Deployment, migrating in every pod before the app starts.
  shiplock kube inject -f deployment.yaml \
    --image registry.example.com/accounts-migrations \
    --db-host postgres.accounts.svc --db-name accounts --secret account-secret \
    | kubectl apply -f -

  # Job + gate: the pods only wait for the schema, with read-only credentials.
  kustomize build overlays/prod | shiplock kube inject -f - --pattern gate \
    --image registry.example.com/accounts-migrations \
    --db-host postgres.accounts.svc --db-name accounts \
    --gate-secret account-readonly-secret

  # MySQL or MariaDB: DATABASE_URL=mysql://HOST/DB, MYSQL_USER and MYSQL_PWD.
  shiplock kube inject -f deployment.yaml --db-driver mysql \
    --image registry.example.com/accounts-migrations \
    --db-host mariadb.accounts.svc --db-name accounts --secret account-secret`,
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, g, args) },
	}
	fs := cmd.Flags()
	f.kube.register(fs, "auto", "service mesh of the pods: auto (from each pod template's annotations and labels), none, linkerd or istio (the namespace injects)")
	fs.StringVarP(&f.filename, "filename", "f", "", `manifests to inject into; "-" reads stdin (required)`)
	fs.StringVar(&f.pattern, "pattern", "init", "init: the initContainer migrates (shiplock up); gate: it waits for the schema a Job migrates (shiplock await)")
	fs.StringVar(&f.name, "name", "", "inject only into the workloads of this name")
	fs.StringArrayVar(&f.selects, "select", nil, "inject into this workload, KIND/NAME (e.g. deployment/accounts); repeatable")
	fs.StringVarP(&f.labels, "selector", "l", "", "inject into the workloads whose labels match, e.g. app=accounts")
	fs.BoolVar(&f.all, "all", false, "inject into every workload of the input")
	fs.StringVar(&f.replace, "replace", "", "replace the existing container of this name (an initContainer, or a Job's goose container)")
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
	var sel []manifest.Selector
	for _, s := range f.selects {
		x, err := manifest.ParseSelector(s)
		if err != nil {
			return manifest.InjectOptions{}, usagef("--select " + strings.TrimPrefix(err.Error(), "manifest: selector "))
		}
		sel = append(sel, x)
	}
	if f.all && (len(sel) > 0 || f.labels != "" || f.name != "") {
		return manifest.InjectOptions{}, usagef("--all cannot be combined with --select, -l or --name")
	}
	return manifest.InjectOptions{Options: o, Pattern: pattern, Gate: gate, Name: f.name, Select: sel, Labels: f.labels, Replace: f.replace}, nil
}

// selected reports whether the flags chose the workloads.
func (f *kubeInjectFlags) selected() bool {
	return f.all || f.name != "" || f.labels != "" || len(f.selects) > 0
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
	out, found, err := manifest.InjectWorkloads(in, opts)
	if err != nil {
		return kubeError(err, source)
	}
	if len(found) > 1 && !f.selected() {
		// An unrelated CronJob in the same file must not get a
		// "shiplock up" by accident.
		var ws []string
		for _, w := range found {
			ws = append(ws, w.String())
		}
		return usagef(fmt.Sprintf("%s: %d workloads (%s): choose with --select KIND/NAME or -l LABEL=VALUE, or give --all", source, len(found), strings.Join(ws, ", ")))
	}
	for _, w := range found {
		switch {
		case !w.Changed:
			fmt.Fprintf(g.streams.Err, "unchanged %s: already injected\n", w)
		case w.Replaced != "":
			fmt.Fprintf(g.streams.Err, "injected into %s, in place of container %q\n", w, w.Replaced)
		default:
			fmt.Fprintf(g.streams.Err, "injected into %s\n", w)
		}
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
