package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/kube/jobrun"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// renderJob runs "shiplock kube job FLAGS -- ARGS" and decodes the Job.
func renderJob(t *testing.T, flags []string, args ...string) *batchv1.Job {
	t.Helper()
	cmd := exec.Command(shiplockBin, append(append(append([]string{"kube", "job"}, flags...), "--"), args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kube job: %v\n%s", err, stderr.String())
	}
	var j batchv1.Job
	if err := yaml.UnmarshalStrict(out, &j); err != nil {
		t.Fatalf("rendered job: %v\n%s", err, out)
	}
	return &j
}

// linkerdAdminEnv is the env var that gives shiplock the Linkerd admin port.
const linkerdAdminEnv = "SHIPLOCK_LINKERD_ADMIN_PORT"

// linkerdProxy stands in for the proxy Linkerd's webhook would add: it
// serves the admin port and exits 0 on POST /shutdown, as linkerd2-proxy
// does with config.linkerd.io/proxy-admin-shutdown: enabled.
func linkerdProxy() corev1.Container {
	return corev1.Container{Name: "linkerd-proxy", Image: kubetest.ToolboxImage,
		Env:  []corev1.EnvVar{{Name: linkerdAdminEnv, Value: "4191"}},
		Args: []string{"serve", "$(" + linkerdAdminEnv + ")"}}
}

// withLinkerdPort moves the pod's Linkerd admin port off the fixed 4191:
// pods share the test machine's loopback, so the node agent gives the pod
// a free port for linkerdAdminEnv, which both the proxy and shiplock read
// (as a pod with config.linkerd.io/admin-port would set it).
func withLinkerdPort(job *batchv1.Job) {
	tpl := &job.Spec.Template
	if tpl.Annotations == nil {
		tpl.Annotations = map[string]string{}
	}
	tpl.Annotations[kubetest.PortEnvAnnotation] = linkerdAdminEnv
	for i := range tpl.Spec.Containers {
		if tpl.Spec.Containers[i].Name == "migrate" {
			tpl.Spec.Containers[i].Env = append(tpl.Spec.Containers[i].Env, corev1.EnvVar{Name: linkerdAdminEnv, Value: "4191"})
		}
	}
}

// TestMeshJobCompletes: a Job whose pod carries a mesh proxy completes,
// because shiplock shuts the proxy down when it is done; with a native
// sidecar the kubelet stops it.
func TestMeshJobCompletes(t *testing.T) {
	env := kubetest.New(t)
	db := newKubeDB(t, env)
	dir := writeMigrations(t, rowMigrations(2, 3))
	flags := db.injectFlags(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Classic sidecar: the proxy is one more container of the pod.
	job := renderJob(t, append(flags, "--mesh", "linkerd"), "up")
	if job.Spec.Template.Annotations["config.linkerd.io/proxy-admin-shutdown"] != "enabled" {
		t.Fatalf("rendered Job lacks the admin-shutdown annotation: %v", job.Spec.Template.Annotations)
	}
	withLinkerdPort(job)
	job.Spec.Template.Spec.Containers = append(job.Spec.Template.Spec.Containers, linkerdProxy())
	var logs bytes.Buffer
	res, err := jobrun.Run(ctx, jobrun.Options{Client: env.Client, Namespace: env.Namespace, Job: job, Container: "migrate", Logs: &logs, Keep: true})
	if err != nil || !res.Succeeded {
		t.Fatalf("job with a classic proxy sidecar: %+v, %v\n%s", res, err, logs.String())
	}
	if !strings.Contains(logs.String(), "linkerd proxy asked to shut down") {
		t.Errorf("shiplock did not say it shut the proxy down:\n%s", logs.String())
	}
	for _, p := range env.Pods(t, "") {
		if port, ok := kubetest.PodPort(&p, linkerdAdminEnv); !ok || port == 4191 {
			t.Errorf("pod %s: %s port %d, %v; want one the node agent gave it, not 4191", p.Name, linkerdAdminEnv, port, ok)
		}
	}

	// Native sidecar: an initContainer with restartPolicy Always.
	if _, err := db.srvExec(t, "DELETE FROM goose_db_version WHERE version_id > 0; DROP TABLE t; DELETE FROM shiplock_versions"); err != nil {
		t.Fatal(err)
	}
	job = renderJob(t, append(flags, "--mesh", "linkerd", "--native-sidecar"), "up")
	withLinkerdPort(job)
	always := corev1.ContainerRestartPolicyAlways
	proxy := linkerdProxy()
	proxy.RestartPolicy = &always
	job.Spec.Template.Spec.InitContainers = append(job.Spec.Template.Spec.InitContainers, proxy)
	res, err = jobrun.Run(ctx, jobrun.Options{Client: env.Client, Namespace: env.Namespace, Job: job, Container: "migrate", Keep: true})
	if err != nil || !res.Succeeded {
		t.Fatalf("job with a native proxy sidecar: %+v, %v", res, err)
	}
}

// TestRenderedManifestsPassDryRun: every manifest kube job and kube inject
// render is accepted by the API server (server-side dry run).
func TestRenderedManifestsPassDryRun(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	flags := []string{"--image", "registry.example.com/accounts-migrations:v1", "--db-host", "db", "--db-name", "accounts", "--secret", "account-secret"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for name, job := range map[string]*batchv1.Job{
		"plain":     renderJob(t, flags, "up"),
		"linkerd":   renderJob(t, append(flags, "--mesh", "linkerd"), "up"),
		"istio":     renderJob(t, append(flags, "--mesh", "istio"), "down", "--to", "20261101000000"),
		"native":    renderJob(t, append(flags, "--mesh", "linkerd", "--native-sidecar"), "up"),
		"urlsecret": renderJob(t, []string{"--image", "registry.example.com/m:v1", "--url-secret", "db:uri"}, "up", "--tx-mode", "all"),
	} {
		if _, err := env.Client.BatchV1().Jobs(env.Namespace).Create(ctx, job, dry); err != nil {
			t.Errorf("job %s rejected by the API server: %v", name, err)
		}
	}
	for name, extra := range map[string][]string{
		"init": nil,
		"gate": {"--pattern", "gate", "--gate-secret", "readonly"},
		"mesh": {"--mesh", "linkerd"},
	} {
		d := inject(t, appDeployment(2), append(flags, extra...)...)
		if _, err := env.Client.AppsV1().Deployments(env.Namespace).Create(ctx, d, dry); err != nil {
			t.Errorf("injected deployment %s rejected by the API server: %v", name, err)
		}
	}
}
