package kube_test

// Tests of the Kubernetes test environment itself: the real Job, Deployment
// and ReplicaSet controllers and scheduler, against the node agent's pods.
// They need $KUBECONFIG (test/kube/start.sh) and skip without it.

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/test/kube/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Generous: the Job controller waits 10 s before replacing a failed pod,
// and CI machines are slow.
const timeout = 2 * time.Minute

func job(name string, backoffLimit int32, containers ...corev1.Container) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(backoffLimit),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: ptr.To[int64](2),
				Containers:                    containers,
			}},
		},
	}
}

func createJob(t *testing.T, e *kubetest.Env, j *batchv1.Job) {
	t.Helper()
	if _, err := e.Client.BatchV1().Jobs(e.Namespace).Create(t.Context(), j, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job %s: %v", j.Name, err)
	}
}

func createPod(t *testing.T, e *kubetest.Env, p *corev1.Pod) {
	t.Helper()
	if p.Spec.TerminationGracePeriodSeconds == nil {
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
	}
	if _, err := e.Client.CoreV1().Pods(e.Namespace).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

func jobFailedWith(reason string) func(*batchv1.Job) bool {
	return func(j *batchv1.Job) bool {
		c := kubetest.JobCondition(j, batchv1.JobFailed)
		return c != nil && c.Reason == reason
	}
}

func jobComplete(j *batchv1.Job) bool { return kubetest.JobCondition(j, batchv1.JobComplete) != nil }

func containerStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}

func portEnv() []corev1.EnvVar { return []corev1.EnvVar{{Name: "PORT_NUM", Value: "8080"}} }

func TestJobSucceeds(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	createJob(t, e, job("ok", 0, kubetest.Toolbox("main", "log", "hello from the job", "--then", "exit", "0")))
	j := e.WaitForJob(t, "ok", timeout, kubetest.JobFinished)
	if !jobComplete(j) || j.Status.Succeeded != 1 {
		t.Fatalf("job: %s, want Complete with 1 succeeded", kubetest.DescribeJob(j))
	}
	pods := e.JobPods(t, "ok")
	if len(pods) != 1 || pods[0].Status.Phase != corev1.PodSucceeded {
		t.Fatalf("want 1 Succeeded pod, got %d: %v", len(pods), pods)
	}
	if got := e.Logs(t, pods[0].Name, "main"); !strings.Contains(got, "hello from the job") {
		t.Errorf("log = %q", got)
	}
}

// A podFailurePolicy FailJob rule on exit code 42 fails the Job at the first
// pod: no retry although backoffLimit allows 5.
func TestJobPodFailurePolicyFailJob(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	j := job("pfp", 5, kubetest.Toolbox("main", "exit", "42", "schema is ahead of the files"))
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action: batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42},
		},
	}}}
	createJob(t, e, j)
	got := e.WaitForJob(t, "pfp", timeout, jobFailedWith(batchv1.JobReasonPodFailurePolicy))
	if got.Status.Failed != 1 {
		t.Errorf("job: %s, want failed=1", kubetest.DescribeJob(got))
	}
	pods := e.JobPods(t, "pfp")
	if len(pods) != 1 {
		t.Fatalf("want exactly 1 pod (no retry), got %d", len(pods))
	}
	cs := containerStatus(&pods[0], "main")
	if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 42 || cs.State.Terminated.Message != "schema is ahead of the files" {
		t.Errorf("container: %+v", cs.State)
	}
}

// backoffLimit 1: two pods fail, then the Job fails.
func TestJobBackoffLimit(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	createJob(t, e, job("backoff", 1, kubetest.Toolbox("main", "exit", "3")))
	got := e.WaitForJob(t, "backoff", timeout, jobFailedWith(batchv1.JobReasonBackoffLimitExceeded))
	if got.Status.Failed != 2 {
		t.Errorf("job: %s, want failed=2", kubetest.DescribeJob(got))
	}
	pods := e.JobPods(t, "backoff")
	if len(pods) != 2 {
		t.Fatalf("want 2 pods, got %d", len(pods))
	}
	for _, p := range pods {
		if cs := containerStatus(&p, "main"); p.Status.Phase != corev1.PodFailed || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
			t.Errorf("pod %s: %s", p.Name, kubetest.DescribePod(&p))
		}
	}
}

// restartPolicy OnFailure restarts the container in place (same pod, same
// emptyDir) until it succeeds.
func TestJobOnFailureRestartsInPlace(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	c := kubetest.Toolbox("main", "fail-once", "/work/marker", "--then", "log", "second attempt")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	j := job("onfailure", 3, c)
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	j.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	createJob(t, e, j)
	got := e.WaitForJob(t, "onfailure", timeout, kubetest.JobFinished)
	if !jobComplete(got) {
		t.Fatalf("job: %s, want Complete", kubetest.DescribeJob(got))
	}
	pods := e.JobPods(t, "onfailure")
	if len(pods) != 1 {
		t.Fatalf("want 1 pod, got %d", len(pods))
	}
	cs := containerStatus(&pods[0], "main")
	if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("container: restarts=%d last=%+v", cs.RestartCount, cs.LastTerminationState)
	}
}

// activeDeadlineSeconds: the Job controller stops the running pod and fails the Job.
func TestJobActiveDeadline(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	j := job("deadline", 3, kubetest.Toolbox("main", "sleep", "10m"))
	j.Spec.ActiveDeadlineSeconds = ptr.To[int64](2)
	createJob(t, e, j)
	e.WaitForJob(t, "deadline", timeout, jobFailedWith(batchv1.JobReasonDeadlineExceeded))
}

// ttlSecondsAfterFinished: the TTL controller deletes the finished Job.
func TestJobTTLAfterFinished(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	j := job("ttl", 0, kubetest.Toolbox("main", "exit", "0"))
	j.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	createJob(t, e, j)
	e.WaitForJobGone(t, "ttl", timeout)
}

// A Deployment with an init container and 3 replicas becomes Available: each
// pod runs the init container, then serves on a port of its own (PORT_NUM
// remapped per pod) and passes its httpGet readiness probe there.
func TestDeploymentInitContainerReplicas(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	labels := map[string]string{"app": "web"}
	app := kubetest.Toolbox("app", "serve", "$(PORT_NUM)")
	app.Env = portEnv()
	app.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					InitContainers:                []corev1.Container{kubetest.Toolbox("migrate", "ticker", "2", "100ms")},
					Containers:                    []corev1.Container{app},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitForDeployment(t, "web", timeout, kubetest.DeploymentAvailable)

	ports := map[int]string{}
	for _, p := range e.Pods(t, "app=web") {
		if !kubetest.PodReady(&p) {
			continue // a pod of an older ReplicaSet on its way out
		}
		if cs := containerStatus(&p, "migrate"); cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("pod %s: init container %+v", p.Name, cs.State)
		}
		port, ok := kubetest.PodPort(&p, "PORT_NUM")
		if !ok {
			t.Fatalf("pod %s has no %s annotation: %v", p.Name, kubetest.PortsAnnotation, p.Annotations)
		}
		ports[port] = p.Name
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("pod %s: %v", p.Name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "hello from " + p.Name; !strings.Contains(string(body), want) {
			t.Errorf("port %d answered %q, want %q", port, body, want)
		}
	}
	if len(ports) != 3 {
		t.Errorf("want 3 ready pods on 3 distinct ports, got %v", ports)
	}
}

// client-go GetLogs(Follow) streams a running container's log and ends when
// the container exits. The container cannot exit before the test tells it
// to, so the stream is provably live.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	c := kubetest.Toolbox("main", "ticker", "3", "50ms", "--then", "serve", "$(PORT_NUM)")
	c.Env = portEnv()
	createPod(t, e, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "follow"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{c}},
	})
	p := e.WaitForPod(t, "follow", timeout, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	stream, err := e.Client.CoreV1().Pods(e.Namespace).GetLogs("follow", &corev1.PodLogOptions{Container: "main", Follow: true}).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "serve: listening") {
			break
		}
	}
	if want := []string{"tick 1", "tick 2", "tick 3"}; len(lines) < 4 || strings.Join(lines[:3], ",") != strings.Join(want, ",") {
		t.Fatalf("first lines = %q, want %q then the serve line", lines, want)
	}
	port, ok := kubetest.PodPort(p, "PORT_NUM")
	if !ok {
		p = e.WaitForPod(t, "follow", timeout, func(p *corev1.Pod) bool { _, ok := kubetest.PodPort(p, "PORT_NUM"); return ok })
		port, _ = kubetest.PodPort(p, "PORT_NUM")
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/shutdown", port), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rest, err := io.ReadAll(stream) // ends once the container has exited
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), "serve: shutdown requested") {
		t.Errorf("rest of the stream = %q", rest)
	}
	e.WaitForPod(t, "follow", timeout, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
}

// Termination messages: written to the file the agent gives each container
// ($TERMINATION_MESSAGE_PATH, or terminationMessagePath rewritten in args),
// or taken from the log with FallbackToLogsOnError when the container fails.
func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	viaEnv := kubetest.Toolbox("env", "exit", "0", "written via env")
	custom := kubetest.Toolbox("custom", "--termination-log=/run/custom/message", "exit", "0", "written to a custom path")
	custom.TerminationMessagePath = "/run/custom/message"
	fallback := kubetest.Toolbox("fallback", "log", "connecting", "password authentication failed", "--then", "exit", "3")
	fallback.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	quiet := kubetest.Toolbox("quiet", "log", "all fine", "--then", "exit", "0")
	quiet.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	createPod(t, e, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "messages"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{viaEnv, custom, fallback, quiet}},
	})
	p := e.WaitForPod(t, "messages", timeout, kubetest.PodTerminal)
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("phase = %s, want Failed (container fallback exits 3)", p.Status.Phase)
	}
	for name, want := range map[string]string{
		"env":      "written via env",
		"custom":   "written to a custom path",
		"fallback": "connecting\npassword authentication failed\nexit: 3\n",
		"quiet":    "",
	} {
		cs := containerStatus(p, name)
		if cs.State.Terminated == nil {
			t.Errorf("%s: not terminated: %+v", name, cs.State)
			continue
		}
		if got := cs.State.Terminated.Message; got != want {
			t.Errorf("%s: message = %q, want %q", name, got, want)
		}
	}
}

// A native sidecar (init container with restartPolicy Always) starts before
// the main container (gated by its startup probe), runs beside it, and is
// stopped once the main container is done, so the Job completes.
func TestNativeSidecar(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	proxy := kubetest.Toolbox("proxy", "serve", "$(PORT_NUM)")
	proxy.Env = portEnv()
	proxy.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	proxy.StartupProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1, FailureThreshold: 30,
	}
	// One attempt only (timeout 0): the proxy must already serve when main starts.
	main := kubetest.Toolbox("main", "get", "http://127.0.0.1:$(PORT_NUM)/", "0s", "--then", "log", "migrated")
	main.Env = portEnv()
	j := job("sidecar", 0, main)
	j.Spec.Template.Spec.InitContainers = []corev1.Container{proxy}
	createJob(t, e, j)
	got := e.WaitForJob(t, "sidecar", timeout, kubetest.JobFinished)
	if !jobComplete(got) {
		t.Fatalf("job: %s, want Complete", kubetest.DescribeJob(got))
	}
	pods := e.JobPods(t, "sidecar")
	if len(pods) != 1 || pods[0].Status.Phase != corev1.PodSucceeded {
		t.Fatalf("want 1 Succeeded pod, got %d", len(pods))
	}
	if cs := containerStatus(&pods[0], "proxy"); cs.State.Terminated == nil {
		t.Errorf("sidecar not terminated: %+v", cs.State)
	}
	if log := e.Logs(t, pods[0].Name, "proxy"); !strings.Contains(log, "serve: got SIGTERM") {
		t.Errorf("sidecar log = %q, want it stopped by SIGTERM", log)
	}
}

// The pre-sidecar mesh pattern: a proxy as a regular container keeps the
// Job's pod Running after the main container is done, until something
// POSTs /shutdown to it; then the Job completes.
func TestSidecarKeepsJobRunningUntilShutdown(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	proxy := kubetest.Toolbox("proxy", "serve", "$(PORT_NUM)")
	proxy.Env = portEnv()
	j := job("mesh", 0, kubetest.Toolbox("main", "log", "migrated"), proxy)
	createJob(t, e, j)
	e.WaitForJob(t, "mesh", timeout, func(j *batchv1.Job) bool { return j.Status.Active == 1 })
	pods := e.JobPods(t, "mesh")
	if len(pods) != 1 {
		t.Fatalf("want 1 pod, got %d", len(pods))
	}
	pod := e.WaitForPod(t, pods[0].Name, timeout, func(p *corev1.Pod) bool {
		main, proxy := containerStatus(p, "main"), containerStatus(p, "proxy")
		return main.State.Terminated != nil && proxy.State.Running != nil
	})
	if pod.Status.Phase != corev1.PodRunning {
		t.Fatalf("main done, proxy running: phase = %s, want Running", pod.Status.Phase)
	}
	j, err := e.Client.BatchV1().Jobs(e.Namespace).Get(t.Context(), "mesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kubetest.JobFinished(j) {
		t.Fatalf("job finished while the proxy runs: %s", kubetest.DescribeJob(j))
	}
	port, ok := kubetest.PodPort(pod, "PORT_NUM")
	if !ok {
		t.Fatalf("no port annotation on %s", pod.Name)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/shutdown", port), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.WaitForJob(t, "mesh", timeout, kubetest.JobFinished); !jobComplete(got) {
		t.Fatalf("job: %s, want Complete", kubetest.DescribeJob(got))
	}
}

// Env from a Secret, a ConfigMap (key and envFrom) and the downward API;
// the Secret is created after the pod, which waits in
// CreateContainerConfigError until it exists, as with the kubelet.
func TestEnvFromSecretConfigMapFieldRef(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	if _, err := e.Client.CoreV1().ConfigMaps(e.Namespace).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data:       map[string]string{"PGHOST": "db.internal", "PGDATABASE": "accounts"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := kubetest.Toolbox("main", "check-env",
		"PGUSER=app", "PGPASSWORD=s3cret", "DB_PGHOST=db.internal", "DATABASE=accounts",
		"POD_NAME=env", "POD_NAMESPACE="+e.Namespace, "POD_IP=127.0.0.1", "APP=accounts",
		"DSN=postgres://app@db.internal/accounts")
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "DB_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
	secretKey := func(k string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db-credentials"}, Key: k}}
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	c.Env = []corev1.EnvVar{
		{Name: "PGUSER", ValueFrom: secretKey("username")},
		{Name: "PGPASSWORD", ValueFrom: secretKey("password")},
		{Name: "DATABASE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "PGDATABASE"}}},
		{Name: "POD_NAME", ValueFrom: field("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
		{Name: "POD_IP", ValueFrom: field("status.podIP")},
		{Name: "APP", ValueFrom: field("metadata.labels['app']")},
		{Name: "DSN", Value: "postgres://$(PGUSER)@$(DB_PGHOST)/$(DATABASE)"},
	}
	createPod(t, e, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "env", Labels: map[string]string{"app": "accounts"}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{c}},
	})
	e.WaitForPod(t, "env", timeout, func(p *corev1.Pod) bool {
		w := containerStatus(p, "main").State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if _, err := e.Client.CoreV1().Secrets(e.Namespace).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-credentials"},
		StringData: map[string]string{"username": "app", "password": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.WaitForPod(t, "env", timeout, kubetest.PodTerminal)
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("pod: %s", kubetest.DescribePod(p))
	}
}

// An exec readiness probe reads a file of an emptyDir shared with an init
// container, which copies it from a ConfigMap volume: the pod becomes Ready
// once the probe passes.
func TestExecReadinessProbeAndVolumes(t *testing.T) {
	t.Parallel()
	e := kubetest.New(t)
	if _, err := e.Client.CoreV1().ConfigMaps(e.Namespace).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "migrations"},
		Data:       map[string]string{"00001_init.sql": "-- +goose Up\nCREATE TABLE t (id int);\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mounts := []corev1.VolumeMount{{Name: "migrations", MountPath: "/migrations"}, {Name: "state", MountPath: "/state"}}
	initC := kubetest.Toolbox("check", "check-file", "/migrations/00001_init.sql", "-- +goose Up\nCREATE TABLE t (id int);\n",
		"--then", "write", "/state/ready", "yes")
	initC.VolumeMounts = mounts
	app := kubetest.Toolbox("app", "sleep", "10m")
	app.VolumeMounts = mounts
	app.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"toolbox", "check-file", "/state/ready", "yes"}}},
		PeriodSeconds: 1,
	}
	createPod(t, e, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{initC},
			Containers:     []corev1.Container{app},
			Volumes: []corev1.Volume{
				{Name: "migrations", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "migrations"}}}},
				{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	})
	e.WaitForPod(t, "probe", timeout, kubetest.PodReady)
}
