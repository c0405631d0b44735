package jobrun_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shiplock/shiplock/kube/jobrun"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

func job(name string, labels map[string]string, args ...string) *batchv1.Job {
	grace := int64(1)
	backoff := int32(2)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr("migrate"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}},
			}}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: &grace,
				Containers: []corev1.Container{{
					Name: "migrate", Image: kubetest.ToolboxImage, Args: args,
					TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				}},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func TestRunFollowsLogsToTheEnd(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	res, err := jobrun.Run(ctx, jobrun.Options{
		Client: env.Client, Namespace: env.Namespace, Logs: &logs,
		Job: job("ok", nil, "ticker", "5", "100ms", "--then", "log", "last line", "--then", "exit", "0", "applied 5 migrations"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || res.ExitCode != 0 || res.Message != "applied 5 migrations" || !res.Deleted || res.Attempts != 1 {
		t.Fatalf("result = %+v", res)
	}
	// Every line, in order, up to the last (toolbox's own "exit: 0" on
	// stderr closes it).
	want := "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\nlast line\nexit: 0\n"
	if logs.String() != want {
		t.Fatalf("logs = %q, want %q", logs.String(), want)
	}
}

func TestRunPermanentFailureNotRetried(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	res, err := jobrun.Run(ctx, jobrun.Options{
		Client: env.Client, Namespace: env.Namespace, Logs: &logs,
		Job: job("bad", nil, "log", "bad file", "--then", "exit", "3", "m/00003_bad.sql:2: unknown annotation"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded || res.ExitCode != 3 || res.Reason != "PodFailurePolicy" || res.Attempts != 1 || res.Deleted {
		t.Fatalf("result = %+v; want failed at once by the pod failure policy, exit 3, kept", res)
	}
	if !strings.Contains(res.Message, "unknown annotation") || !strings.HasPrefix(logs.String(), "bad file\n") {
		t.Fatalf("message %q, logs %q", res.Message, logs.String())
	}
}

func TestRunRetriesThenFollowsEachAttempt(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	marker := "/tmp/shiplock-jobrun-" + env.Namespace
	res, err := jobrun.Run(ctx, jobrun.Options{
		Client: env.Client, Namespace: env.Namespace, Logs: &logs,
		Job: job("flaky", nil, "log", "attempt", "--then", "fail-once", marker, "--then", "exit", "0", "done"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || res.Attempts != 2 || res.Message != "done" {
		t.Fatalf("result = %+v; want success on the second attempt", res)
	}
	if strings.Count(logs.String(), "attempt\n") != 2 || !strings.Contains(logs.String(), "fail-once: first run") || !strings.Contains(logs.String(), "second run") {
		t.Fatalf("logs = %q; want both attempts' output", logs.String())
	}
}

func TestRunSameReleaseAndSameDatabase(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labels := map[string]string{"shiplock.dev/database": "abc"}
	// A long one is running for the database.
	if _, err := env.Client.BatchV1().Jobs(env.Namespace).Create(ctx, job("long", labels, "sleep", "60s"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := jobrun.Run(ctx, jobrun.Options{
		Client: env.Client, Namespace: env.Namespace, SameDatabase: "shiplock.dev/database=abc",
		Job: job("other", labels, "exit", "0"),
	})
	var running *jobrun.RunningError
	if !errors.As(err, &running) || running.Job != "long" {
		t.Fatalf("Run = %v, want a RunningError naming job long", err)
	}
	if _, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, "other", metav1.GetOptions{}); err == nil {
		t.Fatal("a second job was created for the same database")
	}
	if err := jobrun.Delete(ctx, env.Client, env.Namespace, "long"); err != nil {
		t.Fatal(err)
	}

	// The same release twice: the second run finds the first's Job.
	first, err := jobrun.Run(ctx, jobrun.Options{Client: env.Client, Namespace: env.Namespace, Keep: true, Job: job("same", nil, "exit", "0", "ok")})
	if err != nil || !first.Succeeded || first.Existing {
		t.Fatalf("first run = %+v, %v", first, err)
	}
	second, err := jobrun.Run(ctx, jobrun.Options{Client: env.Client, Namespace: env.Namespace, Job: job("same", nil, "exit", "0", "ok")})
	if err != nil || !second.Succeeded || !second.Existing || second.Message != "ok" {
		t.Fatalf("second run = %+v, %v; want the existing Job's result", second, err)
	}
}
