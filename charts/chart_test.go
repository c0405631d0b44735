// Package charts holds the tests of the Helm chart charts/shiplock: helm
// lint, helm template against golden files, and the rendered Job and
// initContainers against what "shiplock kube job" and "kube inject" render
// (package kube/manifest), so that the two cannot drift apart.
package charts

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/kube/manifest"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const chart = "./shiplock"

// valueSets are the chart's default values and each file of shiplock/ci.
func valueSets(t *testing.T) map[string][]string {
	t.Helper()
	sets := map[string][]string{"default": nil}
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("ci values: %v %v", files, err)
	}
	for _, f := range files {
		sets[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = []string{"-f", f}
	}
	return sets
}

func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(kubetest.Helm(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &helmError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

// render runs helm template as release "accounts" in namespace "accounts".
func render(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := helm(t, append([]string{"template", "accounts", chart, "--namespace", "accounts"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	return out
}

func TestChartLint(t *testing.T) {
	for name, args := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chart}, args...)...)
			if err != nil || !strings.Contains(string(out), "0 chart(s) failed") {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

func TestChartGolden(t *testing.T) {
	for name, args := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			got := render(t, args...)
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

// objects are the rendered objects by kind.
type objects struct {
	jobs        []batchv1.Job
	deployments []appsv1.Deployment
	secrets     []corev1.Secret
}

func parse(t *testing.T, out []byte) objects {
	t.Helper()
	var o objects
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var meta struct{ Kind string }
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		var err error
		switch meta.Kind {
		case "Job":
			o.jobs = append(o.jobs, batchv1.Job{})
			err = sigsyaml.UnmarshalStrict([]byte(doc), &o.jobs[len(o.jobs)-1])
		case "Deployment":
			o.deployments = append(o.deployments, appsv1.Deployment{})
			err = sigsyaml.UnmarshalStrict([]byte(doc), &o.deployments[len(o.deployments)-1])
		case "Secret":
			o.secrets = append(o.secrets, corev1.Secret{})
			err = sigsyaml.UnmarshalStrict([]byte(doc), &o.secrets[len(o.secrets)-1])
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", meta.Kind, err, doc)
		}
	}
	return o
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// accounts are the kube job flags of examples/accounts/deploy as options,
// and the same as chart values.
var accountsDB = manifest.Database{
	Host:        "postgres.accounts.svc.cluster.local",
	Name:        "accounts",
	Credentials: manifest.Credentials{Secret: "account-secret"},
}

var accountsValues = []string{
	"--set", "image.repository=registry.example.com/accounts-migrations,image.tag=v1.4.2",
	"--set", "database.host=postgres.accounts.svc.cluster.local,database.name=accounts,database.secret.name=account-secret",
}

// TestChartMatchesKubeJob: the chart's hook Job has the spec of "shiplock
// kube job" for the same settings (pod failure policy and its exit codes,
// limits, security context, env, mesh annotations and arguments), and the
// same database label; only the Job's name and Helm's labels differ.
func TestChartMatchesKubeJob(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		opts   func(*manifest.JobOptions)
	}{
		{"plain", nil, func(*manifest.JobOptions) {}},
		{"linkerd", []string{"--set", "mesh=linkerd"}, func(o *manifest.JobOptions) { o.Mesh = manifest.MeshLinkerd }},
		{"istio", []string{"--set", "mesh=istio,database.port=6432", "--set-json", `job.args=["up","--ddl-lock-timeout","10s"]`}, func(o *manifest.JobOptions) {
			o.Mesh, o.Database.Port, o.Args = manifest.MeshIstio, 6432, []string{"up", "--ddl-lock-timeout", "10s"}
		}},
		{"native-sidecar", []string{"--set", "mesh=linkerd,nativeSidecar=true", "--set-json", `job.args=["down","--to","20261101000000"]`}, func(o *manifest.JobOptions) {
			o.Mesh, o.NativeSidecar, o.Args = manifest.MeshLinkerd, true, []string{"down", "--to", "20261101000000"}
		}},
		{"url-secret", []string{
			// --set (applied after --set-json) replaces accountsValues' database.
			"--set", "database.host=,database.name=,database.secret.name=,database.sslmode=require,database.requireAuth=any,database.urlSecret.name=accounts-db-app,database.urlSecret.key=uri",
			"--set-json", `resources={"requests":null,"limits":{"cpu":null,"memory":"256Mi"}}`,
			"--set", "image.pullPolicy=IfNotPresent,job.serviceAccountName=accounts-migrator,job.backoffLimit=0,job.activeDeadlineSeconds=600,job.ttlSecondsAfterFinished=60,migrationsDir=/sql",
			"--set-json", `job.args=["redo"]`,
		}, func(o *manifest.JobOptions) {
			o.Args = []string{"redo"}
			o.Database = manifest.Database{SSLMode: "require", RequireAuth: manifest.RequireAuthAny, Credentials: manifest.Credentials{URLSecret: manifest.SecretKey{Name: "accounts-db-app", Key: "uri"}}}
			o.ImagePullPolicy = corev1.PullIfNotPresent
			o.ServiceAccountName = "accounts-migrator"
			o.MigrationsDir = "/sql"
			zero, deadline, ttl := int32(0), int64(600), int32(60)
			o.BackoffLimit, o.ActiveDeadlineSeconds, o.TTLSecondsAfterFinished = &zero, &deadline, &ttl
			o.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := manifest.JobOptions{Options: manifest.Options{
				Image: "registry.example.com/accounts-migrations", Tag: "v1.4.2", Args: []string{"up"}, Database: accountsDB,
			}}
			tt.opts(&opts)
			want, err := manifest.Job(opts)
			if err != nil {
				t.Fatal(err)
			}
			o := parse(t, render(t, append(append([]string{"--set", "pattern=job,app.enabled=false"}, accountsValues...), tt.values...)...))
			if len(o.jobs) != 1 {
				t.Fatalf("%d Jobs rendered, want 1", len(o.jobs))
			}
			got := o.jobs[0]
			for _, l := range []string{manifest.LabelDatabase, manifest.LabelCommand, manifest.LabelName, manifest.LabelComponent} {
				if got.Labels[l] != want.Labels[l] || got.Spec.Template.Labels[l] != want.Labels[l] {
					t.Errorf("label %s: chart %q (pod %q), kube job %q", l, got.Labels[l], got.Spec.Template.Labels[l], want.Labels[l])
				}
			}
			got.Spec.Template.Labels, want.Spec.Template.Labels = nil, nil
			if g, w := jsonOf(t, got.Spec), jsonOf(t, want.Spec); g != w {
				t.Errorf("the chart's Job spec differs from kube job's:\n--- chart\n%s\n--- kube job\n%s", g, w)
			}
		})
	}
}

// TestChartMatchesKubeInject: the gate and init patterns' initContainer
// and the pod template's mesh annotations are those of "shiplock kube
// inject" on the same Deployment.
func TestChartMatchesKubeInject(t *testing.T) {
	base := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: accounts
spec:
  template:
    metadata:
      annotations: ANNOTATIONS
    spec:
      containers:
      - name: accounts
        image: registry.example.com/accounts:v1.4.2
`
	tests := []struct {
		name        string
		values      []string
		annotations string
		opts        func(*manifest.InjectOptions)
	}{
		{"gate", []string{"--set", "pattern=gate"}, "{}", func(o *manifest.InjectOptions) { o.Pattern = manifest.PatternGate }},
		{"gate-secret", []string{"--set", "pattern=gate,gate.secret=account-readonly-secret,gate.userKey=user"}, "{}", func(o *manifest.InjectOptions) {
			o.Pattern = manifest.PatternGate
			o.Gate = manifest.Credentials{Secret: "account-readonly-secret", UserKey: "user", PasswordKey: "password"}
		}},
		{"init", []string{"--set", "pattern=init,database.sslmode=verify-full"}, "{}", func(o *manifest.InjectOptions) { o.Database.SSLMode = "verify-full" }},
		{"linkerd", []string{"--set", "pattern=gate,mesh=linkerd", "--set-json", `app.podAnnotations={"linkerd.io/inject":"enabled","config.linkerd.io/skip-outbound-ports":"25"}`},
			`{"linkerd.io/inject": "enabled", "config.linkerd.io/skip-outbound-ports": "25"}`, func(o *manifest.InjectOptions) {
				o.Pattern, o.Mesh = manifest.PatternGate, manifest.MeshLinkerd
			}},
		{"istio", []string{"--set", "pattern=init,mesh=istio,database.port=6432"}, "{}", func(o *manifest.InjectOptions) {
			o.Mesh, o.Database.Port = manifest.MeshIstio, 6432
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := manifest.InjectOptions{Options: manifest.Options{Image: "registry.example.com/accounts-migrations", Database: accountsDB}}
			tt.opts(&opts)
			injected, err := manifest.Inject([]byte(strings.Replace(base, "ANNOTATIONS", tt.annotations, 1)), opts)
			if err != nil {
				t.Fatal(err)
			}
			var want appsv1.Deployment
			if err := sigsyaml.Unmarshal(injected, &want); err != nil {
				t.Fatal(err)
			}
			o := parse(t, render(t, append(append(append([]string{}, accountsValues...), "--set", "app.image.tag=v1.4.2,image.tag="), tt.values...)...))
			if len(o.deployments) != 1 {
				t.Fatalf("%d Deployments rendered, want 1", len(o.deployments))
			}
			got := o.deployments[0].Spec.Template
			if g, w := jsonOf(t, got.Spec.InitContainers), jsonOf(t, want.Spec.Template.Spec.InitContainers); g != w {
				t.Errorf("the chart's initContainer differs from kube inject's:\n--- chart\n%s\n--- kube inject\n%s", g, w)
			}
			if g, w := jsonOf(t, got.Annotations), jsonOf(t, want.Spec.Template.Annotations); g != w && !(len(got.Annotations) == 0 && len(want.Spec.Template.Annotations) == 0) {
				t.Errorf("pod annotations: chart %s, kube inject %s", g, w)
			}
		})
	}
}

// TestChartSecretBeforeJob: a Secret the chart creates is a hook of the
// same events as the Job, ordered before it (Helm weight, Argo CD wave),
// and holds the keys the Job reads.
func TestChartSecretBeforeJob(t *testing.T) {
	o := parse(t, render(t, "-f", filepath.Join(chart, "ci", "argocd-values.yaml")))
	if len(o.secrets) != 1 || len(o.jobs) != 1 {
		t.Fatalf("%d Secrets, %d Jobs rendered, want 1 and 1", len(o.secrets), len(o.jobs))
	}
	s, j := o.secrets[0].Annotations, o.jobs[0].Annotations
	if s["helm.sh/hook"] != j["helm.sh/hook"] || j["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("hooks: Secret %q, Job %q", s["helm.sh/hook"], j["helm.sh/hook"])
	}
	if s["helm.sh/hook-weight"] != "-10" || j["helm.sh/hook-weight"] != "0" || s["helm.sh/hook-delete-policy"] != "before-hook-creation" {
		t.Errorf("Helm order: Secret %v, Job %v", s, j)
	}
	if s[manifest.ArgoCDHook] != "PreSync" || j[manifest.ArgoCDHook] != "PreSync" ||
		s[manifest.ArgoCDSyncWave] != "0" || j[manifest.ArgoCDSyncWave] != "1" || j[manifest.ArgoCDHookDeletePolicy] != "BeforeHookCreation" {
		t.Errorf("Argo CD order: Secret %v, Job %v", s, j)
	}
	for _, e := range o.jobs[0].Spec.Template.Spec.Containers[0].Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			if ref.SecretKeyRef.Name != o.secrets[0].Name || o.secrets[0].StringData[ref.SecretKeyRef.Key] == "" {
				t.Errorf("%s reads %s/%s, which the chart's Secret %s does not hold", e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key, o.secrets[0].Name)
			}
		}
	}
	// The same Job as a kube job --hook argocd --sync-wave 1 renders.
	want, err := manifest.Job(manifest.JobOptions{Options: manifest.Options{Image: "m:v1", Args: []string{"up"}, Database: accountsDB}, Hook: manifest.HookArgoCD, SyncWave: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want.Annotations {
		if j[k] != v {
			t.Errorf("annotation %s: chart %q, kube job --hook argocd %q", k, j[k], v)
		}
	}
}

// TestChartRefuses: values that cannot work fail at render time, naming
// the value.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		set  string
		want string
	}{
		{"pattern=sidecar", `pattern "sidecar": want gate, job or init`},
		{"mesh=consul", `mesh "consul": want none, linkerd or istio`},
		{"nativeSidecar=true", "nativeSidecar needs a mesh"},
		{"database.secret.name=", "database.secret.name is required"},
		{"database.host=", "database.host (with database.secret) or database.urlSecret is required"},
		{"database.urlSecret.name=db,database.urlSecret.key=uri", "database.urlSecret cannot be combined with database.host"},
		{"database.sslmode=on", `database.sslmode "on"`},
		{"database.secret.create=true,database.secret.username=u", "database.secret.password is required"},
		{"database.secret.create=true,database.secret.username=u,database.secret.password=p,job.secretHookWeight=0", "job.secretHookWeight must be lower than job.hookWeight"},
		{"database.secret.create=true,database.secret.username=u,database.secret.password=p,argocd.enabled=true,argocd.secretSyncWave=0", "argocd.secretSyncWave must be lower than argocd.syncWave"},
		{"image.repository=registry.example.com/m:v1", "give the tag as image.tag"},
		{"mesh=istio,job.args={status}", `"shiplock status" cannot shut the mesh's proxy down`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			out, err := helm(t, "template", "accounts", chart, "--set", tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("helm template --set %s: %v, want an error with %q\n%s", tt.set, err, tt.want, out)
			}
			if strings.Contains(err.Error(), "password=p") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}
