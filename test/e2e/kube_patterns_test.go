package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/kube/manifest"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// appDeployment is a base Deployment as a team writes it: the app container
// only. kube inject adds the migration initContainer.
func appDeployment(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels:
    app: app
spec:
  replicas: %d
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %s
        args: ["serve", "$(PORT_NUM)"]
        env:
        - name: PORT_NUM
          value: "8080"
`, replicas, kubetest.ToolboxImage)
}

// inject runs "shiplock kube inject" on the base Deployment.
func inject(t *testing.T, base string, flags ...string) *appsv1.Deployment {
	t.Helper()
	cmd := exec.Command(shiplockBin, append([]string{"kube", "inject", "-f", "-"}, flags...)...)
	cmd.Stdin = strings.NewReader(base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kube inject: %v\n%s", err, stderr.String())
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(out, &d); err != nil {
		t.Fatalf("injected deployment: %v\n%s", err, out)
	}
	return &d
}

// apply creates or updates the Deployment (what kubectl apply would do).
func apply(t *testing.T, env *kubetest.Env, d *appsv1.Deployment) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deps := env.Client.AppsV1().Deployments(env.Namespace)
	// The Deployment controller writes the object's status meanwhile: an
	// update based on a stale read is refused with a conflict, and is
	// made again from a fresh read, as kubectl does.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, d.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = deps.Create(ctx, d, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		cur.Spec = d.Spec
		_, err = deps.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rowMigrations is a table plus single-row inserts: applied twice, a row
// would show up twice.
func rowMigrations(from, to int) map[string]string {
	files := map[string]string{"00001_t.sql": "-- +goose Up\nCREATE TABLE t (n int NOT NULL);\n-- +goose Down\nDROP TABLE t;\n"}
	for i := 2; i <= to; i++ {
		if i >= from {
			files[fmt.Sprintf("%05d_row.sql", i)] = fmt.Sprintf("-- +goose Up\nINSERT INTO t VALUES (%d);\n-- +goose Down\nDELETE FROM t WHERE n = %d;\n", i, i)
		}
	}
	return files
}

func (d kubeDB) injectFlags(t *testing.T, dir string) []string {
	t.Helper()
	f := d.flags(t, dir)
	return f[4:] // no --kubeconfig / -n: inject renders only
}

func (d kubeDB) rows(t *testing.T) (rows, distinct int64) {
	url := d.srv.URL(d.name, "", "")
	return queryInt(t, url, "SELECT count(*) FROM t"), queryInt(t, url, "SELECT count(DISTINCT n) FROM t")
}

// TestInitContainerPattern: 3 replicas, each with the injected
// initContainer, migrate at once; every migration is applied exactly once.
// A second rollout with one more migration applies only that one.
func TestInitContainerPattern(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	db := newKubeDB(t, env)
	v1 := writeMigrations(t, rowMigrations(2, 20))
	apply(t, env, inject(t, appDeployment(3), db.injectFlags(t, v1)...))
	env.WaitForDeployment(t, "app", 3*time.Minute, kubetest.DeploymentAvailable)
	if rows, distinct := db.rows(t); rows != 19 || distinct != 19 {
		t.Fatalf("after v1: %d rows (%d distinct), want 19: a migration ran more or less than once", rows, distinct)
	}

	files := rowMigrations(2, 21)
	v2 := writeMigrations(t, files)
	apply(t, env, inject(t, appDeployment(3), db.injectFlags(t, v2)...))
	env.WaitForDeployment(t, "app", 3*time.Minute, kubetest.DeploymentAvailable)
	if rows, distinct := db.rows(t); rows != 20 || distinct != 20 || db.version(t) != 21 {
		t.Fatalf("after v2: %d rows (%d distinct), version %d; want 20, 20, 21", rows, distinct, db.version(t))
	}
	// Each pod's initContainer left its summary as termination message.
	for _, p := range env.Pods(t, "app=app") {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, s := range p.Status.InitContainerStatuses {
			if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || !strings.Contains(s.State.Terminated.Message, "at version 21") {
				t.Errorf("pod %s init %s: %+v", p.Name, s.Name, s.State)
			}
		}
	}
}

// TestGatePattern: the Deployment's initContainer only awaits the schema;
// pods stay in Init until the Job has migrated, then start. Later pod
// starts do not depend on the Job, which is gone.
func TestGatePattern(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	db := newKubeDB(t, env)
	dir := writeMigrations(t, rowMigrations(2, 5))
	gate := inject(t, appDeployment(2), append(db.injectFlags(t, dir), "--pattern", "gate", "--gate-secret", db.secret)...)
	apply(t, env, gate)

	// The pods wait in Init, and say why: each gate initContainer runs and
	// has logged that the schema is not there yet.
	env.WaitForDeployment(t, "app", 2*time.Minute, func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == 2
	})
	for _, p := range env.Pods(t, "app=app") {
		env.WaitForPod(t, p.Name, 2*time.Minute, func(p *corev1.Pod) bool {
			s := initStatus(p, manifest.InitContainerName)
			return s != nil && s.State.Running != nil
		})
		followUntil(t, env, p.Name, manifest.InitContainerName, "waiting for the schema", 2*time.Minute)
		cur := env.WaitForPod(t, p.Name, time.Minute, func(*corev1.Pod) bool { return true })
		if s := initStatus(cur, manifest.InitContainerName); kubetest.PodReady(cur) || cur.Status.Phase != corev1.PodPending || s == nil || s.State.Running == nil {
			t.Fatalf("pod %s is %s (ready %v) while its gate waits for the migration: %s", cur.Name, cur.Status.Phase, kubetest.PodReady(cur), kubetest.DescribePod(cur))
		}
	}

	code, out, errOut := kubeRun(t, db.flags(t, dir), "up")
	if code != 0 {
		t.Fatalf("kube run -- up: exit %d\n%s\n%s", code, out, errOut)
	}
	env.WaitForDeployment(t, "app", 2*time.Minute, kubetest.DeploymentAvailable)

	// The Job was deleted after success; new pods must still start.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range env.Pods(t, "app=app") {
		if err := env.Client.CoreV1().Pods(env.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	env.WaitForDeployment(t, "app", 2*time.Minute, func(d *appsv1.Deployment) bool {
		return kubetest.DeploymentAvailable(d) && d.Status.ObservedGeneration == d.Generation
	})
	if rows, _ := db.rows(t); rows != 4 {
		t.Fatalf("rows = %d, want 4", rows)
	}
}

// initStatus is the status of the pod's init container name, or nil.
func initStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.InitContainerStatuses {
		if p.Status.InitContainerStatuses[i].Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// followUntil follows a running container's log until a line contains
// want, and fails the test when the log ends or timeout passes first.
func followUntil(t *testing.T, env *kubetest.Env, pod, container, want string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	stream, err := env.Client.CoreV1().Pods(env.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow logs of %s/%s: %v", pod, container, err)
	}
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	var seen []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return
		}
		seen = append(seen, sc.Text())
	}
	t.Fatalf("log of %s/%s ended (%v) without %q:\n%s", pod, container, errors.Join(sc.Err(), ctx.Err()), want, strings.Join(seen, "\n"))
}
