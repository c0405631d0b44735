package manifest

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// twoWorkloads is a Deployment beside an unrelated CronJob, as a
// kustomize build or a chart's output has them.
const twoWorkloads = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: accountserver
  labels: {app: accounts, tier: web}
spec:
  template:
    spec:
      containers:
      - name: accounts
        image: accounts:v1
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cleanup
  labels: {app: accounts, tier: batch}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: cleanup
            image: accounts:v1
`

func TestInjectSelect(t *testing.T) {
	in := []byte(twoWorkloads)
	for _, tt := range []struct {
		name string
		opts func(*InjectOptions)
		want []string // workloads injected
		err  string   // wrapped ErrNoWorkload with this text
	}{
		{"all", func(*InjectOptions) {}, []string{"Deployment/accountserver", "CronJob/cleanup"}, ""},
		{"select", func(o *InjectOptions) { o.Select = []Selector{{"Deployment", "accountserver"}} }, []string{"Deployment/accountserver"}, ""},
		{"labels", func(o *InjectOptions) { o.Labels = "app=accounts,tier!=batch" }, []string{"Deployment/accountserver"}, ""},
		{"select and labels", func(o *InjectOptions) {
			o.Select = []Selector{{"CronJob", "cleanup"}}
			o.Labels = "tier=batch"
		}, []string{"CronJob/cleanup"}, ""},
		{"select misses", func(o *InjectOptions) {
			o.Select = []Selector{{"Deployment", "accountserver"}, {"Deployment", "cleanup"}}
		}, nil, "no Deployment/cleanup"},
		{"labels miss", func(o *InjectOptions) { o.Labels = "app=billing" }, nil, `none with labels "app=billing"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := accountsInject()
			tt.opts(&o)
			out, ws, err := InjectWorkloads(in, o)
			if tt.err != "" {
				if !errors.Is(err, ErrNoWorkload) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ws {
				if !w.Changed {
					t.Errorf("%s not changed", w)
				}
				got = append(got, w.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("injected into %v, want %v", got, tt.want)
			}
			// A document not selected is copied byte for byte.
			inDocs, outDocs := splitDocuments(in), splitDocuments(out)
			for i, d := range outDocs {
				touched := strings.Contains(d.body, "name: shiplock")
				if touched != (inDocs[i] != d) {
					t.Errorf("document %d: has shiplock %v, changed %v", i+1, touched, inDocs[i] != d)
				}
			}
			if n := strings.Count(string(out), "name: shiplock"); n != len(tt.want) {
				t.Errorf("%d shiplock containers for %d workloads:\n%s", n, len(tt.want), out)
			}
		})
	}
	if _, err := ParseSelector("deploy/accountserver"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"accountserver", "service/accounts", "deployment/"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted it", bad)
		}
	}
	o := accountsInject()
	o.Labels = "app in (accounts"
	if _, err := Inject(in, o); err == nil || !strings.Contains(err.Error(), "Labels") {
		t.Errorf("bad label selector: %v", err)
	}
}

// --replace with a name no selected template has fails, instead of
// appending shiplock beside the old recipe.
func TestInjectReplaceMissing(t *testing.T) {
	o := accountsInject()
	o.Replace = "wait-for-db"
	_, err := Inject(readTestdata(t, "inject/replace.in.yaml"), o)
	var de *DocError
	if !errors.As(err, &de) || !errors.Is(err, ErrNoContainer) || de.Kind != "Deployment" ||
		!strings.Contains(err.Error(), `no container named "wait-for-db" (initContainers: migrate, warm-cache; containers: accounts)`) {
		t.Fatalf("err %v", err)
	}
	// The app's own container is not replaced.
	o.Replace = "accounts"
	if _, err := Inject(readTestdata(t, "inject/replace.in.yaml"), o); err == nil || !strings.Contains(err.Error(), "container of the app") {
		t.Errorf("replacing the app: %v", err)
	}
	// Once replaced, injecting again with the same flags changes nothing.
	o.Replace = "migrate"
	out, ws, err := InjectWorkloads(readTestdata(t, "inject/replace.in.yaml"), o)
	if err != nil || ws[0].Replaced != "migrate" {
		t.Fatalf("%v %+v", err, ws)
	}
	again, ws, err := InjectWorkloads(out, o)
	if err != nil || ws[0].Changed || string(again) != string(out) {
		t.Errorf("again: %v %+v", err, ws)
	}
}

// The seed's Job runs nc -z and goose in its only container: --replace
// migrate puts shiplock in that container's place, so goose no longer
// runs; the CronJob beside it is not selected.
func TestInjectReplaceJobContainer(t *testing.T) {
	in := readTestdata(t, "seed/job.yaml")
	o := accountsInject()
	o.Tag = "$TAG"
	o.ImagePullPolicy = "$IMAGEPULLPOLICY"
	o.Replace = "migrate"
	o.Select = []Selector{{"Job", "accounts-migrate-$TAG"}}
	out, ws, err := InjectWorkloads(in, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Replaced != "migrate" {
		t.Fatalf("%+v", ws)
	}
	if strings.Contains(string(out), "goose -dir") || strings.Contains(string(out), "nc -z $PGHOST") {
		t.Errorf("the goose container is still there:\n%s", out)
	}
	docs := splitDocuments(out)
	if docs[1] != splitDocuments(in)[1] {
		t.Errorf("the CronJob changed:\n%s", docs[1].body)
	}
	var job batchv1.Job
	if err := sigsyaml.UnmarshalStrict([]byte(expand(docs[0].body)), &job); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if len(spec.InitContainers) != 0 || len(spec.Containers) != 1 {
		t.Fatalf("initContainers %d, containers %d", len(spec.InitContainers), len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Name != InitContainerName || strings.Join(c.Args, " ") != "up" || c.Image != "registry.example.com/accounts-migrations:v1.4.2" || c.ImagePullPolicy != "IfNotPresent" {
		t.Errorf("container %s args %q image %s policy %s", c.Name, c.Args, c.Image, c.ImagePullPolicy)
	}
	if job.Namespace != "accounts" || job.Name != "accounts-migrate-v1.4.2" {
		t.Errorf("job %s/%s", job.Namespace, job.Name)
	}

	// Under a classic Linkerd proxy, shiplock as the Job's container waits
	// for the proxy and shuts it down, or the Job never completes.
	meshed := strings.Replace(string(in), "    spec:\n      restartPolicy: Never", "    metadata:\n      annotations:\n        linkerd.io/inject: enabled\n    spec:\n      restartPolicy: Never", 1)
	out, err = Inject([]byte(meshed), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal([]byte(expand(splitDocuments(out)[0].body)), &job); err != nil {
		t.Fatal(err)
	}
	an := job.Spec.Template.Annotations
	if got := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "); got != "up --wait-proxy=linkerd --sidecar-shutdown=linkerd" ||
		an[LinkerdProxyAdminShutdown] != "enabled" || an[LinkerdSkipOutboundPorts] != "5432" {
		t.Errorf("args %q annotations %v", got, an)
	}
	// The gate pattern only waits, in an initContainer.
	o.Pattern = PatternGate
	if _, err := Inject(in, o); err == nil || !strings.Contains(err.Error(), "gate pattern") {
		t.Errorf("gate replacing a Job's container: %v", err)
	}
}

// expand fills in a template's placeholders as envsubst does.
func expand(s string) string {
	vars := map[string]string{"TAG": "v1.4.2", "NAMESPACE": "accounts", "IMAGEPULLPOLICY": "IfNotPresent"}
	return os.Expand(s, func(k string) string { return vars[k] })
}

// Placeholders are kept verbatim, and the output is valid once envsubst
// has run: a team converts its templates once and keeps its pipeline.
func TestPlaceholders(t *testing.T) {
	tmpl := strings.ReplaceAll(string(readTestdata(t, "accounts-deployment.yaml")), "v1.4.2", "$TAG")
	tmpl = strings.ReplaceAll(tmpl, "namespace: accounts", "namespace: ${NAMESPACE}")
	o := accountsInject()
	o.ImagePullPolicy = "$IMAGEPULLPOLICY"
	out, err := Inject([]byte(tmpl), o) // the tag, $TAG, from the app's image
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: registry.example.com/accounts-migrations:$TAG\n", "imagePullPolicy: $IMAGEPULLPOLICY\n", "namespace: ${NAMESPACE}\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var d appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict([]byte(expand(string(out))), &d); err != nil {
		t.Fatal(err)
	}
	if c := d.Spec.Template.Spec.InitContainers[0]; c.Image != "registry.example.com/accounts-migrations:v1.4.2" || c.ImagePullPolicy != "IfNotPresent" || d.Namespace != "accounts" {
		t.Errorf("after envsubst: image %s policy %s namespace %s", c.Image, c.ImagePullPolicy, d.Namespace)
	}

	jo := accountsJob("up")
	jo.Tag, jo.Namespace, jo.ImagePullPolicy = "$TAG", "$NAMESPACE", "$IMAGEPULLPOLICY"
	job, err := Job(jo)
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "$NAMESPACE" || !strings.HasSuffix(job.Name, "-$TAG") {
		t.Errorf("job %s/%s", job.Namespace, job.Name)
	}
	// Each release's Job gets its own name.
	b, _ := Marshal(job)
	var v1, v2 batchv1.Job
	sigsyaml.UnmarshalStrict([]byte(expand(string(b))), &v1)
	sigsyaml.UnmarshalStrict([]byte(strings.ReplaceAll(expand(string(b)), "v1.4.2", "v1.5.0")), &v2)
	if v1.Name == v2.Name || v1.Namespace != "accounts" {
		t.Errorf("names %s and %s", v1.Name, v2.Name)
	}

	for _, bad := range []string{"$", "$1TAG", "v$TAG!", "${TAG"} {
		o.Tag = bad
		if _, err := Inject([]byte(tmpl), o); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
}

// A pod template whose proxy is a native sidecar gets no bypass: the proxy
// runs before the initContainers, and a pod-wide bypass would also take
// the app's own database traffic out of the mesh.
func TestInjectNativeSidecarNoBypass(t *testing.T) {
	for _, native := range []string{LinkerdNativeSidecar, IstioNativeSidecar} {
		inject := "linkerd.io/inject: enabled"
		if native == IstioNativeSidecar {
			inject = "sidecar.istio.io/inject: \"true\""
		}
		in := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    metadata:\n      annotations:\n        " + inject + "\n        " + native + ": \"true\"\n    spec:\n      containers:\n      - name: a\n        image: a:v1\n"
		out, err := Inject([]byte(in), accountsInject())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), LinkerdSkipOutboundPorts) || strings.Contains(string(out), IstioExcludeOutboundPorts) || !strings.Contains(string(out), "name: shiplock") {
			t.Errorf("%s: want the initContainer and no bypass:\n%s", native, out)
		}
	}
}

// A goose container with its own version table (-table, --table,
// -table=, GOOSE_TABLE, inside sh -c) is replaced only when shiplock is
// given the same table: else shiplock would apply everything again into
// goose_db_version.
func TestInjectReplaceGooseTable(t *testing.T) {
	in := string(readTestdata(t, "seed/job.yaml"))
	const gooseCmd = `goose -dir /migrations postgres`
	for _, tc := range []struct{ name, from, to string }{
		{"-table in sh -c", gooseCmd, `goose -table svc_versions -dir /migrations postgres`},
		{"--table=", gooseCmd, `goose --table=svc_versions -dir /migrations postgres`},
		{"-table= quoted", gooseCmd, `goose -table='svc_versions' -dir /migrations postgres`},
		{"args", `command: ["sh", "-c", "while ! nc -z $PGHOST 5432; do sleep 5; done; goose -dir /migrations postgres \"host=$PGHOST dbname=$PGDBNAME\" up"]`,
			`command: [goose]
        args: ["--table", "svc_versions", "-dir", "/migrations", "postgres", "host=db", "up"]`},
		{"GOOSE_TABLE", "        env:\n", "        env:\n        - name: GOOSE_TABLE\n          value: svc_versions\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := strings.Replace(in, tc.from, tc.to, 1)
			if job == in {
				t.Fatal("the test's edit did not apply")
			}
			o := accountsInject()
			o.Replace = "migrate"
			o.Select = []Selector{{"Job", "accounts-migrate-$TAG"}}
			_, err := Inject([]byte(job), o)
			if err == nil || !strings.Contains(err.Error(), `uses goose table svc_versions (shiplock's would be goose_db_version): pass --table svc_versions`) {
				t.Fatalf("without the table: %v", err)
			}
			o.Table = "other_versions"
			if _, err := Inject([]byte(job), o); err == nil || !strings.Contains(err.Error(), "pass --table svc_versions") {
				t.Fatalf("another table: %v", err)
			}
			o.Table = "svc_versions"
			out, err := Inject([]byte(job), o)
			if err != nil {
				t.Fatalf("the same table: %v", err)
			}
			if !strings.Contains(string(out), "SHIPLOCK_TABLE") {
				t.Errorf("no SHIPLOCK_TABLE:\n%s", out)
			}
		})
	}
	// goose's default table, named explicitly, needs no --table.
	job := strings.Replace(in, gooseCmd, `goose -table goose_db_version -dir /migrations postgres`, 1)
	o := accountsInject()
	o.Replace = "migrate"
	o.Select = []Selector{{"Job", "accounts-migrate-$TAG"}}
	if _, err := Inject([]byte(job), o); err != nil {
		t.Errorf("goose_db_version: %v", err)
	}
}
