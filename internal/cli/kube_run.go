//go:build !nokube

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/kube/jobrun"
	"github.com/shiplock/shiplock/kube/manifest"
)

type kubeRunFlags struct {
	job               kubeJobFlags
	config            *genericclioptions.ConfigFlags
	timeout           time.Duration
	keep              bool
	deleteOnInterrupt bool
}

func newKubeRunCmd(g *globals) *cobra.Command {
	f := &kubeRunFlags{config: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "run [flags] -- COMMAND [ARGS...]",
		Short: "Create the Job in the cluster, stream its logs and exit with its result",
		Long: `Render the Job that "shiplock kube job" prints, create it in the current
kubeconfig context, stream its pod's logs from the first line to the last
(each retry's too), wait until it completes or fails, print its termination
message and exit with the migration's own exit code. A container killed
before shiplock could exit (137: SIGKILL or out of memory, 143: SIGTERM)
exits 9, retryable; any other code outside shiplock's exits 1. This is the
out-of-band rollback in one command.

The Job's name is derived from everything it runs: running the same release
again follows (or reports) the existing Job instead of starting another. When
another Job is still migrating the same database, run refuses. A Job that
succeeded is deleted with its pods (--keep leaves it); a failed one is kept
for inspection until its --ttl-after-finished. On Ctrl-C, run asks whether to
delete the Job (--delete-on-interrupt deletes without asking); the Job goes
on otherwise.

Cluster flags are kubectl's: --kubeconfig, --context, -n/--namespace (by
default the context's namespace).`,
		Example: `  # Undo release v1.4.2's schema change now, without a rollout.
  shiplock kube run --image registry.example.com/accounts-migrations:v1.4.2 \
    --db-host postgres.accounts.svc --db-name accounts --secret account-secret \
    -- down --to 20261101000000`,
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, g, args) },
	}
	cmd.Flags().SetInterspersed(false)
	f.job.register(cmd.Flags(), false)
	f.config.AddFlags(cmd.Flags())
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "give up following after this long (exit 6); the Job itself is bounded by --active-deadline. 0: no limit")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep the Job and its pods after success")
	cmd.Flags().BoolVar(&f.deleteOnInterrupt, "delete-on-interrupt", false, "on Ctrl-C or SIGTERM, delete the Job without asking (exit 9 either way)")
	return cmd
}

func (f *kubeRunFlags) run(cmd *cobra.Command, g *globals, args []string) error {
	ns, _, err := f.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return usagef("kubeconfig: " + err.Error())
	}
	f.job.namespace = ns
	opts, err := f.job.options(cmd, g, args)
	if err != nil {
		return err
	}
	job, err := manifest.Job(opts)
	if err != nil {
		return kubeError(err, "")
	}
	restConfig, err := f.config.ToRESTConfig()
	if err != nil {
		return usagef("kubeconfig: " + err.Error())
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	ctx := cmd.Context()
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	res, err := jobrun.Run(ctx, jobrun.Options{
		Client:       client,
		Namespace:    ns,
		Job:          job,
		Container:    manifest.JobContainerName,
		Logs:         g.streams.Out,
		SameDatabase: manifest.LabelDatabase + "=" + job.Labels[manifest.LabelDatabase],
		Keep:         f.keep,
		Logger:       g.log,
	})
	if err != nil {
		var running *jobrun.RunningError
		switch {
		case errors.As(err, &running):
			return &exitError{code: exitcode.Locked, msg: err.Error()}
		case errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil:
			fmt.Fprintf(g.streams.Err, "shiplock: gave up after --timeout %s; job %s/%s goes on\n", f.timeout, ns, job.Name)
			return &exitError{code: exitcode.Unavailable}
		case cmd.Context().Err() != nil:
			f.interrupted(g, client, ns, job.Name)
			return &exitError{code: exitcode.Stopped}
		}
		return err
	}
	return report(g, ns, res)
}

// report prints how the Job ended and turns it into shiplock's exit code:
// the migration's own when its container exited.
func report(g *globals, ns string, res *jobrun.Result) error {
	w := g.streams.Err
	msg := strings.TrimSpace(res.Message)
	if msg == "" {
		msg = "(no termination message)"
	}
	attempts := ""
	if res.Attempts > 1 {
		attempts = fmt.Sprintf(" after %d attempts", res.Attempts)
	}
	if res.Succeeded {
		what := "deleted"
		if !res.Deleted {
			what = "kept"
		}
		fmt.Fprintf(w, "job %s/%s succeeded%s (%s): %s\n", ns, res.Job, attempts, what, msg)
		return nil
	}
	reason := res.Reason
	if res.Detail != "" {
		reason += ": " + res.Detail
	}
	fmt.Fprintf(w, "job %s/%s failed%s, exit code %d (%s): %s\n", ns, res.Job, attempts, res.ExitCode, reason, msg)
	code, why := res.Exit()
	if why != "" {
		fmt.Fprintf(w, "%s: exit %d, %s\n", why, code, code.Info().Short)
	}
	fmt.Fprintf(w, "inspect it with: kubectl -n %s describe job %s\n", ns, res.Job)
	return &exitError{code: code}
}

// interrupted asks whether to delete the Job the user stopped following.
func (f *kubeRunFlags) interrupted(g *globals, client kubernetes.Interface, ns, name string) {
	del := f.deleteOnInterrupt
	if !del && isTerminal(g.streams.Err) && g.streams.In != nil {
		if in, ok := g.streams.In.(*os.File); ok && isTerminal(in) {
			fmt.Fprintf(g.streams.Err, "\ninterrupted: delete job %s/%s? [y/N] ", ns, name)
			line, _ := bufio.NewReader(in).ReadString('\n')
			del = strings.EqualFold(strings.TrimSpace(line), "y")
		}
	}
	if !del {
		fmt.Fprintf(g.streams.Err, "job %s/%s goes on; delete it with: kubectl -n %s delete job %s\n", ns, name, ns, name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := jobrun.Delete(ctx, client, ns, name); err != nil {
		fmt.Fprintf(g.streams.Err, "delete job %s/%s: %v\n", ns, name, err)
		return
	}
	fmt.Fprintf(g.streams.Err, "job %s/%s deleted\n", ns, name)
}
