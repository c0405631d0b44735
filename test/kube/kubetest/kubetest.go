// Package kubetest gives a test its own namespace in shiplock's Kubernetes
// test environment (test/kube: a real API server, controllers and scheduler
// on 127.0.0.1, and a node agent that runs pods as local processes), a
// client, and helpers that wait for objects with list+watch.
//
// The cluster is found through $KUBECONFIG. When it is unset, New skips the
// test, naming the variable; when SHIPLOCK_TEST_REQUIRE_KUBE is true (set by
// .ci/run) it fails instead, so CI cannot pass by skipping.
//
// Pods run as processes on the test machine and share 127.0.0.1: see
// test/kube/README.md for the image mapping (ToolboxImage; shiplock runs
// from the built images under runc: ReleaseImage, MigrationImage),
// per-pod ports (PORT_NUM, PodPort) and termination messages.
package kubetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/shiplock/shiplock/internal/imagebuild"
	"github.com/shiplock/shiplock/internal/testdb"
)

// Environment variables read by New.
const (
	// EnvKubeconfig locates the cluster, as for kubectl.
	EnvKubeconfig = "KUBECONFIG"
	// EnvRequire, set to a true value (1, true, yes; see testdb.Required),
	// turns a missing cluster into a test failure.
	EnvRequire = "SHIPLOCK_TEST_REQUIRE_KUBE"
	// EnvKeepNamespace, set to 1, keeps each test's namespace for inspection.
	EnvKeepNamespace = "SHIPLOCK_TEST_KEEP_NAMESPACE"
)

// ToolboxImage runs test/kube/testimages/toolbox, a local binary the node
// agent maps to the image (test/kube/start.sh): test tooling only. Tests
// run shiplock from the built images (ReleaseImage, MigrationImage).
const ToolboxImage = "shiplock.test/toolbox:dev"

// EnvImageStore names the OCI layout (built by cmd/shiplock-image with
// -prefix ImagePrefix) whose images the node agent runs under runc.
const EnvImageStore = "SHIPLOCK_KUBE_IMAGE_STORE"

// Images of the image store, run under runc (RequireImages).
const (
	ImagePrefix = "img.shiplock.test/"
	// ReleaseImage is shiplock's release image, as users pull it.
	ReleaseImage = ImagePrefix + "shiplock:dev"
)

// RequireImages skips the test (fails it when SHIPLOCK_TEST_REQUIRE_KUBE is true)
// unless the node agent runs the built images under runc, and returns the
// image store's path.
func RequireImages(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvImageStore)
	if dir == "" {
		if testdb.Required(os.Getenv(EnvRequire)) {
			t.Fatalf("%s is not set but %s is: build the images (.ci/kube.sh does) and start the cluster with it", EnvImageStore, EnvRequire)
		}
		t.Skipf("%s not set: the node agent does not run the built images", EnvImageStore)
	}
	return dir
}

// MigrationImage builds a migration image, as users build theirs
// (imagebuild.MigrationImage: ReleaseImage plus a layer with the *.sql
// files of dir in /migrations, where the release image's SHIPLOCK_DIR
// points), adds it to the image store and returns its name. The name
// carries the digest, so the same files give the same name and changed
// files a new one; the node agent finds images added while it runs.
func MigrationImage(t testing.TB, dir string) string {
	t.Helper()
	store := RequireImages(t)
	idx, err := imagebuild.MigrationImage(store, ReleaseImage, dir)
	if err != nil {
		t.Fatalf("migration image of %s: %v", dir, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	name := ImagePrefix + "migrations:" + d.Hex[:20]
	if err := imagebuild.AppendLayout(store, imagebuild.Named{Name: name, Index: idx}); err != nil {
		t.Fatalf("add %s to %s: %v", name, store, err)
	}
	return name
}

// Annotations of the node agent's per-pod ports.
const (
	// PortsAnnotation is written by the node agent: "NAME=PORT[,NAME=PORT]",
	// the port each env var of the pod was given (see PodPort).
	PortsAnnotation = "nodeagent.shiplock.test/ports"
	// PortEnvAnnotation on a pod names more env vars (comma-separated) that
	// get a per-pod port, besides PORT_NUM.
	PortEnvAnnotation = "nodeagent.shiplock.test/port-env"
)

// Env is one test's view of the cluster. Tests create their objects in
// Namespace with Client; the namespace is deleted (without waiting) when
// the test ends.
type Env struct {
	// Config is the client configuration read from $KUBECONFIG.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Namespace is the test's own namespace; its default ServiceAccount exists.
	Namespace string
	// Kubeconfig is the value of $KUBECONFIG, for a command under test.
	Kubeconfig string
}

var (
	nodeOnce sync.Once
	nodeErr  error
)

// New returns an Env with a fresh namespace, or skips (fails, under
// SHIPLOCK_TEST_REQUIRE_KUBE) when $KUBECONFIG is unset. It fails the test
// when the cluster is unreachable or has no Ready node. When the test fails,
// the namespace's pods (states and last log lines) and events are logged.
func New(t testing.TB) *Env {
	t.Helper()
	kc := os.Getenv(EnvKubeconfig)
	if kc == "" {
		if v := os.Getenv(EnvRequire); testdb.Required(v) {
			t.Fatalf("%s is not set but %s=%s: start the test cluster (test/kube/start.sh) and export %s", EnvKubeconfig, EnvRequire, v, EnvKubeconfig)
		}
		t.Skipf("%s not set: skipping Kubernetes test (start one with test/kube/start.sh, see test/kube/README.md)", EnvKubeconfig)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		t.Fatalf("load %s=%s: %v", EnvKubeconfig, kc, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client for %s: %v", kc, err)
	}
	e := &Env{Config: cfg, Client: client, Kubeconfig: kc}

	nodeOnce.Do(func() { nodeErr = waitNodeReady(client, time.Minute) })
	if nodeErr != nil {
		t.Fatalf("cluster of %s=%s: %v", EnvKubeconfig, kc, nodeErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: namespacePrefix(t.Name()),
		Annotations:  map[string]string{"shiplock.test/test": t.Name()},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	e.Namespace = ns.Name
	t.Cleanup(func() {
		if os.Getenv(EnvKeepNamespace) == "1" {
			t.Logf("keeping namespace %s (%s=1)", e.Namespace, EnvKeepNamespace)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.CoreV1().Namespaces().Delete(ctx, e.Namespace, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", e.Namespace, err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			e.Dump(t)
		}
	})

	// Pods cannot be created before the namespace's default ServiceAccount exists.
	lw := listWatch(client.CoreV1().RESTClient(), "serviceaccounts", e.Namespace, "default")
	if err := until(ctx, lw, &corev1.ServiceAccount{}, false, func(runtime.Object) bool { return true }); err != nil {
		t.Fatalf("namespace %s: default ServiceAccount: %v", e.Namespace, err)
	}
	return e
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix makes a GenerateName from a test name: TestJob/fails -> test-job-fails-.
func namespacePrefix(name string) string {
	isUpper := func(b byte) bool { return b >= 'A' && b <= 'Z' }
	isLower := func(b byte) bool { return b >= 'a' && b <= 'z' }
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		// A word starts at an upper-case letter after a lower-case one, or
		// at the last upper-case letter of an acronym (TTLAfter -> TTL-After).
		if i > 0 && isUpper(name[i]) && (isLower(name[i-1]) || (isUpper(name[i-1]) && i+1 < len(name) && isLower(name[i+1]))) {
			b.WriteByte('-')
		}
		b.WriteByte(name[i])
	}
	p := strings.Trim(nonName.ReplaceAllString(strings.ToLower(b.String()), "-"), "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" {
		p = "test"
	}
	return p + "-"
}

func waitNodeReady(client kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	ready := func(store cache.Store) (bool, error) {
		for _, o := range store.List() {
			if nodeReady(o.(*corev1.Node)) {
				return true, nil
			}
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, ready, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		return ok && ev.Type != watch.Deleted && nodeReady(n), nil
	})
	if err != nil {
		return fmt.Errorf("no Ready node after %s (is the node agent running? see test/kube/README.md): %w", timeout, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return len(n.Spec.Taints) == 0
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// waiting

func listWatch(rc rest.Interface, resource, ns, name string) cache.ListerWatcher {
	return cache.NewFilteredListWatchFromClient(rc, resource, ns, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	})
}

// until watches the single object lw lists until cond holds for it (or,
// with gone, until it does not exist).
func until(ctx context.Context, lw cache.ListerWatcher, objType runtime.Object, gone bool, cond func(runtime.Object) bool) error {
	pre := func(store cache.Store) (bool, error) {
		items := store.List()
		if gone {
			return len(items) == 0, nil
		}
		for _, o := range items {
			if cond(o.(runtime.Object)) {
				return true, nil
			}
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, objType, pre, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return gone, nil
		}
		return !gone && cond(ev.Object), nil
	})
	return err
}

// waitFor is the typed core of the WaitFor* helpers.
func waitFor[T runtime.Object](t testing.TB, what string, lw cache.ListerWatcher, timeout time.Duration, cond func(T) bool, describe func(T) string) T {
	t.Helper()
	var last T
	var seen bool
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	err := until(ctx, lw, newObject[T](), false, func(o runtime.Object) bool {
		v, ok := o.(T)
		if !ok {
			return false
		}
		last, seen = v, true
		return cond(v)
	})
	if err != nil {
		state := "never seen"
		if seen {
			state = describe(last)
		}
		t.Fatalf("waiting for %s (%s): %v; last seen: %s", what, timeout, err, state)
	}
	return last
}

// newObject returns a new, empty T (a pointer to an API type).
func newObject[T runtime.Object]() runtime.Object {
	var v T
	switch any(v).(type) {
	case *batchv1.Job:
		return &batchv1.Job{}
	case *corev1.Pod:
		return &corev1.Pod{}
	case *appsv1.Deployment:
		return &appsv1.Deployment{}
	}
	panic(fmt.Sprintf("kubetest: no object for %T", v))
}

// WaitForJob waits (at most timeout) until cond holds for the named Job and
// returns it; the test fails with the Job's last state otherwise.
func (e *Env) WaitForJob(t testing.TB, name string, timeout time.Duration, cond func(*batchv1.Job) bool) *batchv1.Job {
	t.Helper()
	lw := listWatch(e.Client.BatchV1().RESTClient(), "jobs", e.Namespace, name)
	return waitFor(t, "job "+name, lw, timeout, cond, DescribeJob)
}

// WaitForPod waits (at most timeout) until cond holds for the named Pod and returns it.
func (e *Env) WaitForPod(t testing.TB, name string, timeout time.Duration, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	lw := listWatch(e.Client.CoreV1().RESTClient(), "pods", e.Namespace, name)
	return waitFor(t, "pod "+name, lw, timeout, cond, DescribePod)
}

// WaitForDeployment waits (at most timeout) until cond holds for the named Deployment and returns it.
func (e *Env) WaitForDeployment(t testing.TB, name string, timeout time.Duration, cond func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	lw := listWatch(e.Client.AppsV1().RESTClient(), "deployments", e.Namespace, name)
	return waitFor(t, "deployment "+name, lw, timeout, cond, DescribeDeployment)
}

// WaitForJobGone waits (at most timeout) until the named Job no longer exists.
func (e *Env) WaitForJobGone(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	lw := listWatch(e.Client.BatchV1().RESTClient(), "jobs", e.Namespace, name)
	if err := until(ctx, lw, &batchv1.Job{}, true, nil); err != nil {
		t.Fatalf("waiting for job %s to be deleted (%s): %v", name, timeout, err)
	}
}

// JobCondition returns the Job's condition of type ct, or nil.
func JobCondition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if c := &j.Status.Conditions[i]; c.Type == ct && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// JobFinished reports whether the Job is Complete or Failed.
func JobFinished(j *batchv1.Job) bool {
	return JobCondition(j, batchv1.JobComplete) != nil || JobCondition(j, batchv1.JobFailed) != nil
}

// PodReady reports whether the Pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodTerminal reports whether the Pod has succeeded or failed.
func PodTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// DeploymentAvailable reports whether the Deployment's controller has seen
// its latest spec, all replicas are updated and available, and its
// Available condition is True.
func DeploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
		return false
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// pods and logs

// Pods lists the namespace's pods matching a label selector ("" for all), sorted by name.
func (e *Env) Pods(t testing.TB, selector string) []corev1.Pod {
	t.Helper()
	list, err := e.Client.CoreV1().Pods(e.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods %q: %v", selector, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// JobPods lists the pods of the named Job.
func (e *Env) JobPods(t testing.TB, job string) []corev1.Pod {
	t.Helper()
	return e.Pods(t, batchv1.JobNameLabel+"="+job)
}

// Logs returns the log of a pod's container (its current or last instance).
func (e *Env) Logs(t testing.TB, pod, container string) string {
	t.Helper()
	b, err := e.Client.CoreV1().Pods(e.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("logs of %s/%s: %v", pod, container, err)
	}
	return string(b)
}

// PodPort returns the port the node agent gave env var name in pod p (see
// PortsAnnotation): pods share 127.0.0.1, so a container's PORT_NUM=8080
// becomes a port of its own, and that is where it listens.
func PodPort(p *corev1.Pod, name string) (int, bool) {
	for _, kv := range strings.Split(p.Annotations[PortsAnnotation], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

// Toolbox returns a container running the toolbox test image with args
// (see test/kube/testimages/toolbox).
func Toolbox(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: ToolboxImage, Args: args}
}

// ---------------------------------------------------------------------------
// diagnostics

// DescribeJob summarises a Job's status on one line.
func DescribeJob(j *batchv1.Job) string {
	var conds []string
	for _, c := range j.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	ready := int32(0)
	if j.Status.Ready != nil {
		ready = *j.Status.Ready
	}
	return fmt.Sprintf("active=%d ready=%d succeeded=%d failed=%d conditions=%v",
		j.Status.Active, ready, j.Status.Succeeded, j.Status.Failed, conds)
}

// DescribePod summarises a Pod's phase, conditions and containers on one line.
func DescribePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason=%s", p.Status.Reason)
	}
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	all := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range all {
		fmt.Fprintf(&b, " [%s restarts=%d ready=%v %s]", cs.Name, cs.RestartCount, cs.Ready, describeState(cs.State))
	}
	return b.String()
}

func describeState(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return fmt.Sprintf("waiting %s %q", s.Waiting.Reason, s.Waiting.Message)
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated %s exit=%d %q", s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message)
	}
	return "unknown"
}

// DescribeDeployment summarises a Deployment's status on one line.
func DescribeDeployment(d *appsv1.Deployment) string {
	var conds []string
	for _, c := range d.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return fmt.Sprintf("generation=%d observed=%d replicas=%d updated=%d ready=%d available=%d conditions=%v",
		d.Generation, d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas,
		d.Status.ReadyReplicas, d.Status.AvailableReplicas, conds)
}

// Dump logs the namespace's pods (state and the last log lines of each
// container) and events. New calls it when a test fails.
func (e *Env) Dump(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pods, err := e.Client.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump: list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: %s", p.Name, DescribePod(&p))
		var names []string
		for _, c := range p.Spec.InitContainers {
			names = append(names, c.Name)
		}
		for _, c := range p.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range names {
			tail := int64(20)
			rc, err := e.Client.CoreV1().Pods(e.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c, TailLines: &tail}).Stream(ctx)
			if err != nil {
				t.Logf("  %s log: %v", c, err)
				continue
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 8<<10))
			rc.Close()
			t.Logf("  %s log (last lines):\n%s", c, strings.TrimRight(string(b), "\n"))
		}
	}
	evs, err := e.Client.CoreV1().Events(e.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump: list events: %v", err)
		return
	}
	sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
	for _, ev := range evs.Items {
		t.Logf("event %s %s/%s %s: %s", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
}

// Helm binary for the chart's tests (test/kube/build.sh builds it).
const (
	// EnvHelm is the helm binary to run; unset, "helm" is looked up in PATH.
	EnvHelm = "SHIPLOCK_HELM"
	// EnvRequireHelm, true, turns a missing helm into a test failure, as
	// EnvRequire does.
	EnvRequireHelm = "SHIPLOCK_TEST_REQUIRE_HELM"
)

// Helm returns the helm binary: $SHIPLOCK_HELM, else helm in PATH. Without
// one it skips the test, or fails it when SHIPLOCK_TEST_REQUIRE_HELM or
// SHIPLOCK_TEST_REQUIRE_KUBE is true.
func Helm(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvHelm)
	if bin == "" {
		bin, _ = exec.LookPath("helm")
	}
	if bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	msg := fmt.Sprintf("no helm: set %s (test/kube/build.sh builds it into /tmp/shiplock-kube/bin/helm) or put helm in PATH", EnvHelm)
	if testdb.Required(os.Getenv(EnvRequireHelm)) || testdb.Required(os.Getenv(EnvRequire)) {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
