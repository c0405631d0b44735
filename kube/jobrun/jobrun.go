// Package jobrun creates a Kubernetes Job, follows it to its end and
// reports its result: the pod's logs streamed from the first line to the
// last, the container's exit code and its termination message. It waits by
// list+watch, never by polling sleeps, within the caller's context.
package jobrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/shiplock/shiplock/exitcode"
)

// Options configure Run.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Job is created as is (its namespace is set to Namespace).
	Job *batchv1.Job
	// Container is the container whose logs, exit code and termination
	// message are reported; "" means the pod's first container.
	Container string
	// Logs receives the container's output, attempt after attempt; nil
	// discards it.
	Logs io.Writer
	// SameDatabase selects the Jobs that migrate the same database (a label
	// selector such as "shiplock.dev/database=ab12cd34"): when one of them,
	// other than Job itself, is still running, Run refuses with a
	// *RunningError instead of starting a second one. "" skips the check.
	SameDatabase string
	// Keep leaves a Job that succeeded in place; by default it is deleted
	// with its pods. A failed Job is always kept, for inspection (its
	// ttlSecondsAfterFinished removes it later).
	Keep bool
	// Logger receives progress (created, attempt N, deleted); nil
	// discards.
	Logger *slog.Logger
}

// Result is how a Job ended.
type Result struct {
	Job string
	// Pod is the last pod the Job ran, "" when none started.
	Pod       string
	Attempts  int
	Succeeded bool
	// ExitCode is the reported container's exit code in the last pod, or
	// -1 when it never terminated (deadline, deleted pod).
	ExitCode int
	// Message is the container's termination message.
	Message string
	// ContainerReason is why the container terminated, as the kubelet
	// says: "Completed", "Error", "OOMKilled", ...
	ContainerReason string
	// Reason and Detail come from the Job's Failed condition
	// (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy).
	Reason, Detail string
	// Existing is true when an identical Job (same name) was already there:
	// Run followed it, or reported its result, instead of creating one.
	Existing bool
	// Deleted is true when Run deleted the Job after success.
	Deleted bool
}

// Exit codes of a container killed by a signal: 128 + the signal's number.
const (
	exitSIGKILL = 128 + 9
	exitSIGTERM = 128 + 15
)

// Exit returns shiplock's exit code for how the Job ended, and why when
// the code is not the container's own: 0 when it succeeded; the
// container's exit code when it is one of shiplock's (package exitcode);
// exitcode.Stopped, which is retryable, for a container that was killed
// before shiplock could exit by itself (137: SIGKILL, out of memory or the
// grace period ran out; 143: SIGTERM before shiplock handled it);
// exitcode.Failed for anything else (another exit code, or no container
// that exited: the deadline passed, the pod was deleted).
func (r *Result) Exit() (exitcode.Code, string) {
	if r.Succeeded {
		return exitcode.OK, ""
	}
	code := exitcode.Code(r.ExitCode)
	switch {
	case r.ContainerReason == "OOMKilled":
		return exitcode.Stopped, fmt.Sprintf("the container was killed: out of memory (OOMKilled, exit code %d); raise its memory limit", r.ExitCode)
	case r.ExitCode == exitSIGKILL:
		return exitcode.Stopped, "the container was killed (exit code 137, SIGKILL): its grace period ran out, or the node ran out of memory"
	case r.ExitCode == exitSIGTERM:
		return exitcode.Stopped, "the container was terminated (exit code 143, SIGTERM): the pod was deleted or evicted before shiplock could stop by itself"
	case r.ExitCode > 0 && code.Info().Name != "":
		return code, ""
	case r.ExitCode < 0:
		return exitcode.Failed, "the container never exited"
	case r.ExitCode == 0:
		return exitcode.Failed, "the container exited 0 but the Job failed"
	}
	return exitcode.Failed, fmt.Sprintf("exit code %d is not one of shiplock's", r.ExitCode)
}

// RunningError is another Job migrating the same database.
type RunningError struct {
	Namespace, Job string
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("job %s/%s is already running against this database; wait for it (kubectl wait --for=condition=complete job/%s) or delete it", e.Namespace, e.Job, e.Job)
}

// Run creates the Job (or finds the identical one), streams the logs of
// each of its pods, waits for it to complete or fail, and returns the
// result. When ctx ends first it returns ctx's error and what it knows; the
// Job is left running: the caller decides whether to Delete it.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	jobs := o.Client.BatchV1().Jobs(o.Namespace)
	job := o.Job.DeepCopy()
	job.Namespace = o.Namespace
	res := &Result{Job: job.Name, ExitCode: -1}

	if o.SameDatabase != "" {
		list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: o.SameDatabase})
		if err != nil {
			return res, fmt.Errorf("list jobs: %w", err)
		}
		for _, j := range list.Items {
			if j.Name != job.Name && !finished(&j) {
				return res, &RunningError{Namespace: o.Namespace, Job: j.Name}
			}
		}
	}

	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		if created, err = jobs.Get(ctx, job.Name, metav1.GetOptions{}); err != nil {
			return res, fmt.Errorf("get existing job: %w", err)
		}
		res.Existing = true
		o.Logger.Info("job exists already: the same release; following it", "job", job.Name)
	case err != nil:
		return res, fmt.Errorf("create job: %w", err)
	default:
		o.Logger.Info("job created", "job", job.Name, "namespace", o.Namespace)
	}

	// Follow the pods' logs while waiting for the Job's end. Two contexts:
	// the pod watch stops as soon as the Job has finished; a log stream in
	// flight then still gets up to 10 s to deliver its last lines.
	watchCtx, stopWatch := context.WithCancel(ctx)
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	f := &follower{o: o, job: created, attempts: map[string]bool{}, streamed: map[string]bool{}}
	followDone := make(chan error, 1)
	go func() { followDone <- f.run(watchCtx, streamCtx) }()

	final, err := waitFinished(ctx, o.Client, o.Namespace, created.Name)
	stopWatch()
	if err != nil {
		stopStreams()
		<-followDone
		f.fill(res)
		return res, err
	}
	drain := time.AfterFunc(10*time.Second, stopStreams)
	<-followDone
	drain.Stop()

	res.Succeeded = condition(final, batchv1.JobComplete)
	if c := failedCondition(final); c != nil {
		res.Reason, res.Detail = c.Reason, c.Message
	}
	if err := fillFromPods(ctx, o, created, res); err != nil {
		return res, err
	}
	res.Attempts = max(res.Attempts, f.count())
	if res.Succeeded && !o.Keep {
		if err := Delete(context.WithoutCancel(ctx), o.Client, o.Namespace, created.Name); err != nil {
			o.Logger.Warn("delete job", "job", created.Name, "err", err)
		} else {
			res.Deleted = true
		}
	}
	return res, nil
}

// Delete deletes a Job and, in the background, its pods.
func Delete(ctx context.Context, c kubernetes.Interface, namespace, name string) error {
	policy := metav1.DeletePropagationBackground
	err := c.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// waitFinished watches the Job until it has a Complete or Failed condition.
func waitFinished(ctx context.Context, c kubernetes.Interface, namespace, name string) (*batchv1.Job, error) {
	lw := cache.NewFilteredListWatchFromClient(c.BatchV1().RESTClient(), "jobs", namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	})
	var final *batchv1.Job
	_, err := watchtools.UntilWithSync(ctx, lw, &batchv1.Job{}, nil, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, fmt.Errorf("job %s was deleted before it finished", name)
		case watch.Added, watch.Modified:
			j, ok := ev.Object.(*batchv1.Job)
			if ok && finished(j) {
				final = j
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("watch job %s: %w", name, err)
	}
	return final, nil
}

func finished(j *batchv1.Job) bool {
	return condition(j, batchv1.JobComplete) || condition(j, batchv1.JobFailed)
}

func condition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func failedCondition(j *batchv1.Job) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func podSelector(job *batchv1.Job) string {
	return "batch.kubernetes.io/controller-uid=" + string(job.UID)
}

// fillFromPods reads the exit code and termination message of the last
// pod's container.
func fillFromPods(ctx context.Context, o Options, job *batchv1.Job, res *Result) error {
	pods, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: podSelector(job)})
	if err != nil {
		return fmt.Errorf("list pods of job %s: %w", job.Name, err)
	}
	if len(pods.Items) == 0 {
		return nil
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	res.Attempts = len(pods.Items)
	last := pods.Items[len(pods.Items)-1]
	res.Pod = last.Name
	if cs := containerStatus(&last, o.Container); cs != nil {
		if t := cs.State.Terminated; t != nil {
			res.ExitCode, res.Message, res.ContainerReason = int(t.ExitCode), t.Message, t.Reason
		}
	}
	return nil
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	if name == "" && len(p.Spec.Containers) > 0 {
		name = p.Spec.Containers[0].Name
	}
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// follower streams the logs of every pod of the Job, one after the other,
// each from its first line to its last.
type follower struct {
	o   Options
	job *batchv1.Job

	streamed map[string]bool // only the follower's goroutine uses it

	mu       sync.Mutex
	attempts map[string]bool
	last     string
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attempts)
}

func (f *follower) fill(res *Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res.Attempts, res.Pod = len(f.attempts), f.last
}

// run watches the Job's pods and streams the logs of each pod whose
// container has started, from its first line to its last. When watchCtx
// ends (the Job finished), it streams the pods it has not streamed yet and
// returns; streams use streamCtx.
func (f *follower) run(watchCtx, streamCtx context.Context) error {
	c := f.o.Client
	lw := cache.NewFilteredListWatchFromClient(c.CoreV1().RESTClient(), "pods", f.o.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = podSelector(f.job)
	})
	_, err := watchtools.UntilWithSync(watchCtx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted {
			f.follow(streamCtx, p)
		}
		return false, nil
	})
	if err != nil && watchCtx.Err() == nil {
		return err
	}
	// The Job finished: a last pod may have run and ended before its
	// events reached the watch.
	pods, err := c.CoreV1().Pods(f.o.Namespace).List(streamCtx, metav1.ListOptions{LabelSelector: podSelector(f.job)})
	if err != nil {
		return nil // the result does not depend on the logs
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	for i := range pods.Items {
		f.follow(streamCtx, &pods.Items[i])
	}
	return nil
}

// follow streams p's logs once its container has started, unless done
// already.
func (f *follower) follow(ctx context.Context, p *corev1.Pod) {
	if f.streamed[p.Name] {
		return
	}
	cs := containerStatus(p, f.o.Container)
	if cs == nil || (cs.State.Running == nil && cs.State.Terminated == nil) {
		return // still waiting to start: the next event says when
	}
	f.streamed[p.Name] = true
	f.mu.Lock()
	f.attempts[p.Name] = true
	f.last = p.Name
	n := len(f.attempts)
	f.mu.Unlock()
	if n > 1 {
		f.o.Logger.Info("job retried", "job", f.job.Name, "pod", p.Name, "attempt", n)
	}
	if err := f.stream(ctx, p); err != nil && ctx.Err() == nil {
		f.o.Logger.Warn("follow logs", "pod", p.Name, "err", err)
	}
}

// stream copies one pod's container logs from the first line, following
// them until the container exits.
func (f *follower) stream(ctx context.Context, p *corev1.Pod) error {
	container := f.o.Container
	if container == "" {
		container = p.Spec.Containers[0].Name
	}
	req := f.o.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Follow: true})
	// The status can say "running" a moment before the node serves the
	// logs: retry the request briefly, as kubectl logs -f does.
	var (
		rc  io.ReadCloser
		err error
	)
	for try := 0; ; try++ {
		if rc, err = req.Stream(ctx); err == nil || try == 20 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(f.o.Logs, rc)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
