package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// accountsInject injects the accounts migrations, tagged like the app.
func accountsInject() InjectOptions {
	return InjectOptions{Options: Options{
		Image:    "registry.example.com/accounts-migrations",
		Database: accountsDB,
	}}
}

func TestInjectGolden(t *testing.T) {
	tests := []struct {
		name string // golden file: testdata/inject/NAME.golden.yaml
		in   string // input in testdata
		opts func() InjectOptions
	}{
		{"accounts", "accounts-deployment.yaml", accountsInject},
		{"accounts-gate", "accounts-deployment.yaml", func() InjectOptions {
			o := accountsInject()
			o.Pattern = PatternGate
			o.Gate = Credentials{Secret: "account-readonly-secret"}
			return o
		}},
		{"statefulset", "inject/statefulset.in.yaml", func() InjectOptions {
			o := accountsInject()
			o.Image = "registry.example.com/ledger-migrations"
			o.Tag = "2026.11.26"
			o.ImagePullPolicy = corev1.PullAlways
			o.Database = Database{Credentials: Credentials{URLSecret: SecretKey{"ledger-db", "url"}}}
			return o
		}},
		{"mysql-gate", "accounts-deployment.yaml", func() InjectOptions {
			o := accountsInject()
			o.Database = Database{Driver: DriverMySQL, Host: "mariadb.accounts.svc", Port: 3307, Name: "accounts", Credentials: Credentials{Secret: "account-secret"}}
			o.Mesh = MeshLinkerd
			o.Pattern = PatternGate
			o.Gate = Credentials{Secret: "account-readonly-secret"}
			return o
		}},
		{"multidoc", "inject/multidoc.in.yaml", accountsInject},
		{"skip-ports", "inject/skip-ports.in.yaml", accountsInject},
		{"istio", "inject/istio.in.yaml", func() InjectOptions {
			o := accountsInject()
			o.Database.Port = 6432
			o.Args = []string{"up", "--wait-timeout", "5m"}
			return o
		}},
		{"replace", "inject/replace.in.yaml", func() InjectOptions {
			o := accountsInject()
			o.Replace = "migrate"
			return o
		}},
		{"list", "inject/list.in.yaml", func() InjectOptions {
			o := accountsInject()
			o.Name = "accounts"
			o.Mesh = MeshLinkerd // the namespace injects
			return o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := readTestdata(t, tt.in)
			out, err := Inject(in, tt.opts())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "inject/"+tt.name+".golden.yaml", out)

			again, err := Inject(out, tt.opts())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) {
				t.Errorf("injecting twice changed the output:\n%s", again)
			}
		})
	}
}

// The accounts Deployment, injected, decodes strictly into a typed
// Deployment with the initContainer and the Linkerd annotation, and
// everything else as it was.
func TestInjectAccounts(t *testing.T) {
	in := readTestdata(t, "accounts-deployment.yaml")
	out, err := Inject(in, accountsInject())
	if err != nil {
		t.Fatal(err)
	}
	var before, after appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(in, &before); err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(out, &after); err != nil {
		t.Fatal(err)
	}
	inits := after.Spec.Template.Spec.InitContainers
	if len(inits) != 1 {
		t.Fatalf("initContainers %+v", inits)
	}
	c := inits[0]
	if c.Name != InitContainerName || c.Image != "registry.example.com/accounts-migrations:v1.4.2" {
		t.Errorf("initContainer %s image %s", c.Name, c.Image)
	}
	if got := strings.Join(c.Args, " "); got != "up" {
		t.Errorf("args %q", got)
	}
	if got := after.Spec.Template.Annotations[LinkerdSkipOutboundPorts]; got != "5432" {
		t.Errorf("%s = %q", LinkerdSkipOutboundPorts, got)
	}
	after.Spec.Template.Spec.InitContainers = nil
	delete(after.Spec.Template.Annotations, LinkerdSkipOutboundPorts)
	a, _ := Marshal(&after)
	b, _ := Marshal(&before)
	if !bytes.Equal(a, b) {
		t.Errorf("inject changed more than the initContainer and the annotation:\n%s\nwas\n%s", a, b)
	}
}

func TestInjectPassesOtherDocumentsThrough(t *testing.T) {
	in := readTestdata(t, "inject/multidoc.in.yaml")
	out, err := Inject(in, accountsInject())
	if err != nil {
		t.Fatal(err)
	}
	inDocs, outDocs := splitDocuments(in), splitDocuments(out)
	if len(inDocs) != len(outDocs) {
		t.Fatalf("%d documents in, %d out", len(inDocs), len(outDocs))
	}
	for i := range inDocs {
		same := inDocs[i] == outDocs[i]
		isDeployment := strings.Contains(inDocs[i].body, "kind: Deployment")
		if same == isDeployment {
			t.Errorf("document %d: unchanged=%v, deployment=%v:\n%s", i+1, same, isDeployment, outDocs[i].sep+outDocs[i].body)
		}
	}
	// The separator with a comment, the comments and the existing
	// initContainer stay.
	for _, want := range []string{"---   # a separator with a comment\n", "- name: copy-config # runs first\n", "# only a comment\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lost %q", want)
		}
	}
	if i, j := strings.Index(string(out), "copy-config"), strings.Index(string(out), "name: shiplock"); i < 0 || j < i {
		t.Errorf("the shiplock initContainer is not after copy-config")
	}
}

// A new release (another tag) replaces the initContainer in place and
// changes nothing else.
func TestInjectUpdatesTag(t *testing.T) {
	in := readTestdata(t, "inject/multidoc.in.yaml")
	o := accountsInject()
	o.Tag = "v2.0.0"
	v2, err := Inject(in, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Tag = "v2.1.0"
	v21, err := Inject(v2, o)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(v21), "accounts-migrations:v2.1.0", "accounts-migrations:v2.0.0")
	if got != string(v2) {
		t.Errorf("a new tag changed more than the image:\n%s", v21)
	}
	if strings.Count(string(v21), "name: shiplock") != 1 {
		t.Errorf("more than one shiplock initContainer:\n%s", v21)
	}
}

func TestInjectName(t *testing.T) {
	in := []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: accounts
spec:
  template:
    spec:
      containers:
      - name: accounts
        image: accounts:v1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: billing
spec:
  template:
    spec:
      containers:
      - name: billing
        image: billing:v1
`)
	o := accountsInject()
	o.Name = "billing"
	out, err := Inject(in, o)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocuments(out)
	if docs[0] != splitDocuments(in)[0] || !strings.Contains(docs[1].body, "name: shiplock") {
		t.Errorf("--name billing:\n%s", out)
	}

	o.Name = "ledger"
	if _, err := Inject(in, o); !errors.Is(err, ErrNoWorkload) || !strings.Contains(err.Error(), `"ledger"`) {
		t.Errorf("unknown name: %v", err)
	}
	svc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: accounts\n")
	if _, err := Inject(svc, accountsInject()); !errors.Is(err, ErrNoWorkload) {
		t.Errorf("no workload: %v", err)
	}
	// A kind of another group is not a workload.
	other := []byte("apiVersion: example.com/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec: {}\n")
	if _, err := Inject(other, accountsInject()); !errors.Is(err, ErrNoWorkload) {
		t.Errorf("example.com Deployment: %v", err)
	}
}

// Empty flow collections that Inject fills become block ones.
func TestInjectFlowCollections(t *testing.T) {
	in := []byte(`apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {}
spec:
  initContainers: []
  containers: [{name: app, image: "app:v1"}]
`)
	o := accountsInject()
	o.Mesh = MeshIstio
	out, err := Inject(in, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  annotations:\n    traffic.sidecar.istio.io/excludeOutboundPorts: \"5432\"\n",
		"  initContainers:\n  - args:\n    - up\n",
		"  containers: [{name: app, image: \"app:v1\"}]\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestInjectErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts func(*InjectOptions)
		want string // in the error
	}{
		{"bad yaml", "apiVersion: v1\nkind: Service\n---\nkind: [", nil, "document 2: parse YAML"},
		{"no template", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec: {}\n", nil, "document 1 (Deployment a): no pod template at spec.template"},
		{"no tag anywhere", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: accounts\n", nil, "Tag: is required"},
		{"both meshes", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    linkerd.io/inject: enabled\n  labels:\n    sidecar.istio.io/inject: \"true\"\nspec:\n  containers:\n  - name: a\n    image: a:1\n", nil, "both Linkerd"},
		{"initContainers not a list", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers: {}\n  containers:\n  - name: a\n    image: a:1\n", nil, "initContainers is not a list"},
		{"gate credentials without gate", "apiVersion: v1\nkind: Pod\n", func(o *InjectOptions) { o.Gate.Secret = "ro" }, "Gate: is only used by the gate pattern"},
		{"gate secret without location", "apiVersion: v1\nkind: Pod\n", func(o *InjectOptions) {
			o.Pattern = PatternGate
			o.Gate.Secret = "ro"
			o.Database = Database{Credentials: Credentials{URLSecret: SecretKey{"db", "uri"}}}
		}, "Gate.Secret: needs the database's host"},
		{"gate secret with a URL's user", "apiVersion: v1\nkind: Pod\n", func(o *InjectOptions) {
			o.Pattern = PatternGate
			o.Gate.Secret = "ro"
			o.Database = Database{URL: "postgres://migrator@db/accounts"}
		}, "Gate.Secret: cannot be combined with a URL that names its user: Database.URL"},
		{"literal password", "apiVersion: v1\nkind: Pod\n", func(o *InjectOptions) {
			o.Database = Database{URL: "postgres://u:pw@db/x"}
		}, "Database.URL: holds a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := accountsInject()
			if tt.opts != nil {
				tt.opts(&o)
			}
			_, err := Inject([]byte(tt.in), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q in it", err, tt.want)
			}
		})
	}
}

func TestInitContainer(t *testing.T) {
	o := accountsInject()
	o.Tag = "v1.4.2"
	o.Pattern = PatternGate
	o.Gate = Credentials{URLSecret: SecretKey{"accounts-readonly", "uri"}}
	c, err := InitContainer(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != InitContainerName || strings.Join(c.Args, " ") != "await" {
		t.Errorf("container %s args %v", c.Name, c.Args)
	}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	// The gate's URL holds the location: no PGHOST from Database.
	if got := strings.Join(names, " "); got != "SHIPLOCK_DIR DATABASE_URL PGREQUIREAUTH" {
		t.Errorf("env %s", got)
	}
	if ref := c.Env[1].ValueFrom.SecretKeyRef; ref.Name != "accounts-readonly" || ref.Key != "uri" {
		t.Errorf("DATABASE_URL from %+v", ref)
	}
}

func TestAddPort(t *testing.T) {
	tests := []struct {
		list string
		port int32
		want string
	}{
		{"", 5432, "5432"},
		{"25,587", 5432, "25,587,5432"},
		{"25, 587 ", 5432, "25, 587,5432"},
		{"5432", 5432, "5432"},
		{"25,5432,587", 5432, "25,5432,587"},
		{"4000-6000", 5432, "4000-6000"},
		{"4000-5000", 5432, "4000-5000,5432"},
		{"25,", 6432, "25,6432"},
	}
	for _, tt := range tests {
		if got := addPort(tt.list, tt.port); got != tt.want {
			t.Errorf("addPort(%q, %d) = %q, want %q", tt.list, tt.port, got, tt.want)
		}
	}
}

func TestDetectMesh(t *testing.T) {
	tests := []struct {
		annotations, labels map[string]string
		want                Mesh
	}{
		{nil, nil, MeshAuto},
		{map[string]string{LinkerdInject: "enabled"}, nil, MeshLinkerd},
		{map[string]string{LinkerdInject: "disabled"}, nil, MeshNone},
		{nil, map[string]string{IstioInject: "true"}, MeshIstio},
		{map[string]string{IstioInject: "true"}, nil, MeshIstio},
		{nil, map[string]string{IstioInject: "false"}, MeshNone},
		{nil, map[string]string{IstioRev: "stable"}, MeshIstio},
	}
	for _, tt := range tests {
		got, err := detectMesh(tt.annotations, tt.labels)
		if err != nil || got != tt.want {
			t.Errorf("detectMesh(%v, %v) = %q, %v; want %q", tt.annotations, tt.labels, got, err, tt.want)
		}
	}
	// A template's opt-out wins over a namespace-wide mesh; "none" from
	// the caller wins over everything.
	if got := resolveMesh(MeshLinkerd, MeshNone); got != MeshNone {
		t.Errorf("opt-out: %q", got)
	}
	if got := resolveMesh(MeshNone, MeshLinkerd); got != MeshNone {
		t.Errorf("--mesh none: %q", got)
	}
	if got := resolveMesh(MeshIstio, MeshAuto); got != MeshIstio {
		t.Errorf("namespace mesh: %q", got)
	}
}

func TestSplitDocuments(t *testing.T) {
	for _, in := range []string{
		"",
		"a: 1\n",
		"---\na: 1\n---\nb: 2",
		"a: 1\n--- # c\nb: |\n  ---\n  x\n---\n\n",
		"a: 1\n----\nb: 2\n",
	} {
		var b strings.Builder
		for _, c := range splitDocuments([]byte(in)) {
			b.WriteString(c.sep + c.body)
		}
		if b.String() != in {
			t.Errorf("split and joined %q: %q", in, b.String())
		}
	}
	if n := len(splitDocuments([]byte("a: 1\n----\nb: 2\n"))); n != 1 {
		t.Errorf("---- is not a separator: %d documents", n)
	}
}
