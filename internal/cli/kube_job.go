//go:build !nokube

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/kube/manifest"
)

// kubeJobFlags are the flags of a rendered Job: kube job's, and later kube
// run's.
type kubeJobFlags struct {
	kube          kubeFlags
	namespace     string
	namePrefix    string
	nativeSidecar bool
	backoffLimit  int32
	deadline      time.Duration
	ttl           time.Duration
	account       string
}

// register adds the flags; withNamespace adds -n/--namespace, which kube
// run takes from kubectl's flags instead.
func (f *kubeJobFlags) register(fs *pflag.FlagSet, withNamespace bool) {
	f.kube.register(fs, "none", "service mesh whose proxy the Job's pod gets: none, linkerd or istio (the proxy is shut down when shiplock is done, and the database port bypasses it)")
	if withNamespace {
		fs.StringVarP(&f.namespace, "namespace", "n", "", "the Job's namespace (default: kubectl's)")
	}
	fs.StringVar(&f.namePrefix, "name-prefix", manifest.DefaultNamePrefix, "start of the Job's name, which is PREFIX-COMMAND-HASH")
	fs.BoolVar(&f.nativeSidecar, "native-sidecar", false, "the mesh runs its proxy as a native sidecar (Kubernetes 1.29+), which stops by itself: ask for one instead of shutting the proxy down")
	fs.Int32Var(&f.backoffLimit, "backoff-limit", manifest.DefaultBackoffLimit, "retries of retryable failures (exit 6, 7 and 9: database not available, lock not acquired, stopped or killed; a lost node); permanent exit codes 1-5 fail the Job at once")
	fs.DurationVar(&f.deadline, "active-deadline", manifest.DefaultActiveDeadlineSeconds*time.Second, "the Job's time limit, retries included (activeDeadlineSeconds)")
	fs.DurationVar(&f.ttl, "ttl-after-finished", manifest.DefaultTTLSecondsAfterFinished*time.Second, "delete the finished Job and its pods after this long (ttlSecondsAfterFinished)")
	fs.StringVar(&f.account, "service-account", "", "the pod's ServiceAccount (its token is never mounted)")
}

// options resolves the flags and the shiplock arguments into JobOptions.
func (f *kubeJobFlags) options(cmd *cobra.Command, g *globals, args []string) (manifest.JobOptions, error) {
	if len(args) == 0 {
		return manifest.JobOptions{}, usagef(`no shiplock command given: end the flags with "--" and the command, e.g. -- up, or -- down --to VERSION`)
	}
	if err := checkShiplockArgs(args); err != nil {
		return manifest.JobOptions{}, err
	}
	o, err := f.kube.options(cmd, g, args)
	if err != nil {
		return manifest.JobOptions{}, err
	}
	if o.Mesh == manifest.MeshAuto {
		return manifest.JobOptions{}, usagef(fmt.Sprintf("--mesh %q: a Job has no pod template to find its mesh in: give none, linkerd or istio", f.kube.mesh))
	}
	if f.deadline < time.Second || f.deadline%time.Second != 0 {
		return manifest.JobOptions{}, usagef(fmt.Sprintf("--active-deadline %s: want a positive number of whole seconds", f.deadline))
	}
	if f.ttl < 0 || f.ttl%time.Second != 0 {
		return manifest.JobOptions{}, usagef(fmt.Sprintf("--ttl-after-finished %s: want a whole number of seconds", f.ttl))
	}
	deadline, ttl := int64(f.deadline/time.Second), int32(f.ttl/time.Second)
	backoff := f.backoffLimit
	return manifest.JobOptions{
		Options:                 o,
		Namespace:               f.namespace,
		NamePrefix:              f.namePrefix,
		NativeSidecar:           f.nativeSidecar,
		BackoffLimit:            &backoff,
		ActiveDeadlineSeconds:   &deadline,
		TTLSecondsAfterFinished: &ttl,
		ServiceAccountName:      f.account,
	}, nil
}

func newKubeJobCmd(g *globals) *cobra.Command {
	f := &kubeJobFlags{}
	var hook string
	var wave int
	cmd := &cobra.Command{
		Use:   "job [flags] -- COMMAND [ARGS...]",
		Short: "Print a Job that runs one shiplock command (up, down --to V, ...)",
		Long: `Print a Job, as YAML on stdout, that runs one shiplock command in the
migration image: the migration of a release, or an out-of-band rollback.

The Job's name is PREFIX-COMMAND-HASH, the hash covering everything the Job
runs (image, arguments, database, settings): applying the same release
again changes nothing, and a new one gets a new Job rather than a "field is
immutable" error. It retries only what can heal (backoffLimit 2): its
podFailurePolicy fails it at once on shiplock's permanent exit codes 1-5 and
ignores pod disruptions. It is bounded by --active-deadline, deleted
--ttl-after-finished after it ends, runs as non-root on a read-only root
file system, and writes its summary as the pod's termination message.

With --mesh linkerd or istio, the database port bypasses the proxy, and
shiplock waits for the proxy and shuts it down when it is done
(--wait-proxy, --sidecar-shutdown), so the Job can complete; for Linkerd the
pod gets config.linkerd.io/proxy-admin-shutdown: enabled, which that needs.
With --native-sidecar the mesh runs its proxy as a Kubernetes native sidecar
(1.29+) instead, which the kubelet stops by itself: nothing is shut down.

With --hook argocd the Job is an Argo CD PreSync hook
(argocd.argoproj.io/hook: PreSync, hook-delete-policy BeforeHookCreation,
sync-wave --sync-wave); with --hook helm a Helm pre-install,pre-upgrade hook
(hook-delete-policy before-hook-creation, hook-weight --sync-wave). A hook
runs before the release's other resources exist: the Secret it reads must
exist already, or be a hook of a lower wave or weight.

The database is given by flags only, never read from this shell's
environment; --database-url may be a URL without a password. The shiplock
arguments are checked as shiplock will parse them in the pod.`,
		Example: `  # The migration of release v1.4.2 of the accounts service.
  shiplock kube job -n accounts \
    --image registry.example.com/accounts-migrations --tag v1.4.2 \
    --db-host postgres.accounts.svc --db-name accounts --secret account-secret \
    --mesh linkerd -- up | kubectl apply -f -

  # Undo a release's schema change, out of band.
  shiplock kube job --image registry.example.com/accounts-migrations:v1.4.2 \
    --url-secret accounts-db:uri -- down --to 20261101000000

  # An Argo CD PreSync hook, committed next to the Application's manifests.
  shiplock kube job --hook argocd --image registry.example.com/accounts-migrations:v1.4.2 \
    --db-host postgres.accounts.svc --db-name accounts --secret account-secret -- up

  # MySQL or MariaDB: DATABASE_URL=mysql://mariadb.accounts.svc/accounts,
  # MYSQL_USER and MYSQL_PWD from the Secret.
  shiplock kube job --db-driver mysql --image registry.example.com/accounts-migrations:v1.4.2 \
    --db-host mariadb.accounts.svc --db-name accounts --secret account-secret -- up`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(cmd, g, args)
			if err != nil {
				return err
			}
			if opts.Hook, err = manifest.ParseHook(hook); err != nil {
				return usagef(fmt.Sprintf("--hook %q: want none, helm or argocd", hook))
			}
			if cmd.Flags().Changed("sync-wave") && opts.Hook == manifest.HookNone {
				return usagef("--sync-wave needs --hook argocd or helm")
			}
			opts.SyncWave = wave
			return f.run(g, args, opts)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags(), true)
	cmd.Flags().StringVar(&hook, "hook", "none", "render the Job as a hook: argocd (PreSync, BeforeHookCreation), helm (pre-install,pre-upgrade, before-hook-creation) or none")
	cmd.Flags().IntVar(&wave, "sync-wave", 0, "with --hook: the Argo CD sync wave (or Helm hook weight) of the Job; a Secret it reads that is a hook needs a lower one")
	return cmd
}

func (f *kubeJobFlags) run(g *globals, args []string, opts manifest.JobOptions) error {
	job, err := manifest.Job(opts)
	if err != nil {
		return kubeError(err, "")
	}
	if warn := rerunWarning(args); warn != "" {
		fmt.Fprintln(g.streams.Err, "warning: "+warn)
	}
	b, err := manifest.Marshal(job)
	if err != nil {
		return err
	}
	_, err = g.streams.Out.Write(b)
	return err
}

// rerunWarning says when running the Job's command twice does more than
// running it once: applying the manifest again after the Job was deleted
// (ttlSecondsAfterFinished) runs it again.
func rerunWarning(args []string) string {
	switch {
	case args[0] == "down" && !hasArg(args, "to"):
		return `"down" without --to reverts one more migration each time a Job runs it, also when this manifest is applied again after the Job was deleted; prefer "down --to VERSION"`
	case args[0] == "redo":
		return `"redo" reverts and reapplies the newest migration each time a Job runs it, also when this manifest is applied again after the Job was deleted`
	}
	return ""
}

func hasArg(args []string, flag string) bool {
	for _, a := range args {
		if a == "--"+flag || strings.HasPrefix(a, "--"+flag+"=") {
			return true
		}
	}
	return false
}
