package manifest

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/exitcode"
)

// accountsDB is the accounts service's database: host and name as
// literals, user and password from the Secret account-secret.
var accountsDB = Database{
	Host:        "postgres.accounts.svc.cluster.local",
	Name:        "accounts",
	Credentials: Credentials{Secret: "account-secret"},
}

func accountsJob(args ...string) JobOptions {
	return JobOptions{
		Options: Options{
			Image:    "registry.example.com/accounts-migrations",
			Tag:      "v1.4.2",
			Args:     args,
			Database: accountsDB,
		},
		Namespace: "accounts",
	}
}

func TestJobGolden(t *testing.T) {
	tests := []struct {
		name string
		opts func() JobOptions
	}{
		{"plain", func() JobOptions { return accountsJob("up") }},
		{"linkerd", func() JobOptions {
			o := accountsJob("up")
			o.Mesh = MeshLinkerd
			return o
		}},
		{"istio", func() JobOptions {
			o := accountsJob("up", "--ddl-lock-timeout", "10s")
			o.Mesh = MeshIstio
			o.Database.Port = 6432
			return o
		}},
		{"native-sidecar", func() JobOptions {
			o := accountsJob("down", "--to", "20261101000000")
			o.Mesh = MeshLinkerd
			o.NativeSidecar = true
			return o
		}},
		{"argocd", func() JobOptions {
			o := accountsJob("up")
			o.Hook = HookArgoCD
			o.SyncWave = 1
			return o
		}},
		{"helm", func() JobOptions {
			o := accountsJob("up")
			o.Hook = HookHelm
			return o
		}},
		// MySQL: the location as DATABASE_URL, the Secret's user and
		// password as MYSQL_USER and MYSQL_PWD, no libpq variables, and
		// the mesh lets MySQL's port through.
		{"mysql", func() JobOptions {
			o := accountsJob("up")
			o.Database = Database{Driver: DriverMySQL, Host: "mariadb.accounts.svc", Name: "accounts", Credentials: Credentials{Secret: "account-secret"}}
			o.Mesh = MeshLinkerd
			return o
		}},
		{"mysql-url-secret", func() JobOptions {
			o := accountsJob("up")
			o.Database = Database{Driver: DriverMySQL, Credentials: Credentials{URLSecret: SecretKey{Name: "accounts-db", Key: "url"}}}
			o.Mesh = MeshIstio
			return o
		}},
		{"url-secret", func() JobOptions {
			o := accountsJob("redo")
			o.Database = Database{Credentials: Credentials{URLSecret: SecretKey{Name: "accounts-db-app", Key: "uri"}}}
			o.ImagePullPolicy = corev1.PullIfNotPresent
			o.NamePrefix = "accounts"
			o.ServiceAccountName = "accounts-migrator"
			o.BackoffLimit = ptr(int32(0))
			o.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: DefaultResources().Limits[corev1.ResourceMemory]}}
			return o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := Job(tt.opts())
			if err != nil {
				t.Fatal(err)
			}
			checkJob(t, job)
			b, err := Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "job/"+tt.name+".yaml", b)

			// The YAML reads back as the same Job.
			var back batchv1.Job
			if err := sigsyaml.UnmarshalStrict(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Name != job.Name || len(back.Spec.Template.Spec.Containers) != 1 {
				t.Errorf("read back %q with %d containers", back.Name, len(back.Spec.Template.Spec.Containers))
			}
		})
	}
}

// checkJob asserts what every rendered Job must have, whatever the golden
// files say.
func checkJob(t *testing.T, job *batchv1.Job) {
	t.Helper()
	if errs := validation.IsDNS1123Label(job.Name); len(errs) > 0 {
		t.Errorf("name %q: %v", job.Name, errs)
	}
	spec := job.Spec
	if spec.BackoffLimit == nil || *spec.BackoffLimit > 2 || spec.ActiveDeadlineSeconds == nil || spec.TTLSecondsAfterFinished == nil {
		t.Errorf("backoffLimit %v, activeDeadlineSeconds %v, ttlSecondsAfterFinished %v", spec.BackoffLimit, spec.ActiveDeadlineSeconds, spec.TTLSecondsAfterFinished)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	rules := spec.PodFailurePolicy.Rules
	if len(rules) != 2 || rules[0].Action != batchv1.PodFailurePolicyActionIgnore ||
		rules[1].Action != batchv1.PodFailurePolicyActionFailJob || *rules[1].OnExitCodes.ContainerName != c.Name {
		t.Errorf("podFailurePolicy %+v", rules)
	}
	// The Job fails at once on exactly the permanent codes, and retries
	// every retryable one.
	failJob := map[int32]bool{}
	for _, v := range rules[len(rules)-1].OnExitCodes.Values {
		failJob[v] = true
	}
	for _, i := range exitcode.All() {
		if failJob[int32(i.Code)] != (i.Kind == exitcode.Permanent) {
			t.Errorf("podFailurePolicy FailJob on %v: %v, want %v (%s)", i.Code, failJob[int32(i.Code)], !failJob[int32(i.Code)], i.Kind)
		}
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || sc.RunAsUser != nil || sc.RunAsGroup != nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext %+v", sc)
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy %q", c.TerminationMessagePolicy)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("no memory limit: %+v", c.Resources)
	}
	for _, e := range c.Env {
		if strings.Contains(e.Name, "PASSWORD") && e.Value != "" {
			t.Errorf("env %s has a literal value", e.Name)
		}
	}
	if job.Labels[LabelDatabase] == "" || job.Labels[LabelName] != "shiplock" {
		t.Errorf("labels %v", job.Labels)
	}
}

func TestJobName(t *testing.T) {
	name := func(t *testing.T, o JobOptions) string {
		t.Helper()
		job, err := Job(o)
		if err != nil {
			t.Fatal(err)
		}
		return job.Name
	}
	base := name(t, accountsJob("up"))
	if !regexp.MustCompile(`^shiplock-up-[0-9a-f]{8}$`).MatchString(base) {
		t.Errorf("name %q, want shiplock-up-HASH8", base)
	}
	if again := name(t, accountsJob("up")); again != base {
		t.Errorf("same inputs gave %q and %q", base, again)
	}

	differs := map[string]func(*JobOptions){
		"args":      func(o *JobOptions) { o.Args = []string{"up", "--to", "5"} },
		"tag":       func(o *JobOptions) { o.Tag = "v1.4.3" },
		"image":     func(o *JobOptions) { o.Image = "registry.example.com/other" },
		"database":  func(o *JobOptions) { o.Database.Name = "accounts_test" },
		"host":      func(o *JobOptions) { o.Database.Host = "replica.example.com" },
		"mesh":      func(o *JobOptions) { o.Mesh = MeshLinkerd },
		"resources": func(o *JobOptions) { o.Resources = &corev1.ResourceRequirements{} },
	}
	for what, change := range differs {
		o := accountsJob("up")
		change(&o)
		if got := name(t, o); got == base || !strings.HasPrefix(got, "shiplock-up-") {
			t.Errorf("%s changed: name %q, want shiplock-up- and a hash other than %q", what, got, base)
		}
	}
	// The namespace is not part of the name: the same release applied to
	// two namespaces has the same Job name in each.
	o := accountsJob("up")
	o.Namespace = "staging"
	if got := name(t, o); got != base {
		t.Errorf("namespace changed the name: %q", got)
	}

	down := name(t, accountsJob("down", "--to", "20261101000000"))
	if !strings.HasPrefix(down, "shiplock-down-") {
		t.Errorf("down: %q", down)
	}

	o = accountsJob("Repair_Something-Quite-Long-Indeed-Yes")
	o.NamePrefix = strings.Repeat("a", 40)
	long := name(t, o)
	if len(long) > 63 || !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9a-f]{8}$`).MatchString(long) {
		t.Errorf("long name %q (%d chars)", long, len(long))
	}
}

func TestJobDatabaseLabel(t *testing.T) {
	label := func(d Database) string {
		o := accountsJob("up")
		o.Database = d
		job, err := Job(o)
		if err != nil {
			t.Fatal(err)
		}
		if errs := validation.IsValidLabelValue(job.Labels[LabelDatabase]); len(errs) > 0 {
			t.Fatal(errs)
		}
		if job.Labels[LabelDatabase] != job.Spec.Template.Labels[LabelDatabase] {
			t.Errorf("pod label differs from the Job's")
		}
		return job.Labels[LabelDatabase]
	}
	base := label(accountsDB)
	other := accountsDB
	other.Credentials = Credentials{Secret: "accounts-readonly", UserKey: "user"}
	if label(other) != base {
		t.Errorf("credentials changed the database label")
	}
	explicit := accountsDB
	explicit.Port = 5432
	if label(explicit) != base {
		t.Errorf("an explicit default port changed the database label")
	}
	other = accountsDB
	other.Name = "billing"
	if label(other) == base {
		t.Errorf("another database has the same label")
	}
	url := Database{URL: "postgres://migrator@postgres.accounts.svc.cluster.local/accounts"}
	if label(url) != base {
		t.Errorf("the same database as a URL has another label")
	}
}

func TestJobRefusesLiteralPasswords(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(*JobOptions)
		field string
	}{
		{"url with password", func(o *JobOptions) {
			o.Database = Database{URL: "postgres://app:hunter2@db/accounts"}
		}, "Database.URL"},
		{"key=value password", func(o *JobOptions) {
			o.Database = Database{URL: "host=db dbname=accounts password=hunter2"}
		}, "Database.URL"},
		{"query password", func(o *JobOptions) {
			o.Database = Database{URL: "postgres://db/accounts?password=hunter2"}
		}, "Database.URL"},
		{"password in args", func(o *JobOptions) {
			o.Args = []string{"up", "--database-url", "postgres://app:hunter2@db/accounts"}
		}, "Args"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := accountsJob("up")
			tt.opts(&o)
			_, err := Job(o)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("error %v, want a FieldError on %s", err, tt.field)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}

	// A URL without a password is rendered as is; the password may come
	// from the Secret as PGPASSWORD.
	o := accountsJob("up")
	o.Database = Database{URL: "postgres://migrator@db:6432/accounts?sslmode=require", Credentials: Credentials{Secret: "account-secret"}}
	job, err := Job(o)
	if err != nil {
		t.Fatal(err)
	}
	env := job.Spec.Template.Spec.Containers[0].Env
	if env[1].Name != "DATABASE_URL" || env[1].Value != o.Database.URL || env[4].Name != "PGPASSWORD" || env[4].ValueFrom == nil {
		t.Errorf("env %+v", env)
	}
}

func TestJobOptionErrors(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(*JobOptions)
		field string
	}{
		{"no image", func(o *JobOptions) { o.Image = "" }, "Image"},
		{"no tag", func(o *JobOptions) { o.Tag = "" }, "Tag"},
		{"tag twice", func(o *JobOptions) { o.Image += ":v1" }, "Tag"},
		{"bad tag", func(o *JobOptions) { o.Tag = "v1/2" }, "Tag"},
		{"no args", func(o *JobOptions) { o.Args = nil }, "Args"},
		{"flag first", func(o *JobOptions) { o.Args = []string{"--to", "5", "up"} }, "Args"},
		{"no database", func(o *JobOptions) { o.Database = Database{} }, "Database"},
		{"host and url secret", func(o *JobOptions) { o.Database.URLSecret = SecretKey{"db", "uri"} }, "Database.Host"},
		{"secret and url secret", func(o *JobOptions) {
			o.Database = Database{Credentials: Credentials{Secret: "s", URLSecret: SecretKey{"db", "uri"}}}
		}, "Database.Secret"},
		{"url secret without key", func(o *JobOptions) {
			o.Database = Database{Credentials: Credentials{URLSecret: SecretKey{Name: "db"}}}
		}, "Database.URLSecret"},
		{"bad secret", func(o *JobOptions) { o.Database.Secret = "Account_Secret" }, "Database.Secret"},
		{"bad sslmode", func(o *JobOptions) { o.Database.SSLMode = "sometimes" }, "Database.SSLMode"},
		{"bad driver", func(o *JobOptions) { o.Database.Driver = "oracle" }, "Database.Driver"},
		{"postgres driver, mysql url", func(o *JobOptions) {
			o.Database = Database{Driver: DriverPostgres, URL: "mysql://app@db/accounts"}
		}, "Database.Driver"},
		{"mysql sslmode", func(o *JobOptions) { o.Database.Driver = DriverMySQL; o.Database.SSLMode = "require" }, "Database.SSLMode"},
		{"mysql require auth", func(o *JobOptions) { o.Database.Driver = DriverMySQL; o.Database.RequireAuth = "md5" }, "Database.RequireAuth"},
		{"mysql without a database name", func(o *JobOptions) { o.Database.Driver = DriverMySQL; o.Database.Name = "" }, "Database.Name"},
		{"mysql url with a password", func(o *JobOptions) {
			o.Database = Database{URL: "mysql://app:pw@db/accounts"}
		}, "Database.URL"},
		{"bad pull policy", func(o *JobOptions) { o.ImagePullPolicy = "Sometimes" }, "ImagePullPolicy"},
		{"relative dir", func(o *JobOptions) { o.MigrationsDir = "migrations" }, "MigrationsDir"},
		{"bad table", func(o *JobOptions) { o.Table = "a.b.c" }, "Table"},
		{"native without mesh", func(o *JobOptions) { o.NativeSidecar = true }, "NativeSidecar"},
		{"mesh and status", func(o *JobOptions) { o.Args = []string{"status"}; o.Mesh = MeshIstio }, "Mesh"},
		{"bad prefix", func(o *JobOptions) { o.NamePrefix = "Accounts" }, "NamePrefix"},
		{"request above limit", func(o *JobOptions) {
			r := DefaultResources()
			r.Requests[corev1.ResourceMemory] = r.Limits[corev1.ResourceMemory].DeepCopy()
			r.Limits[corev1.ResourceMemory] = DefaultResources().Requests[corev1.ResourceMemory]
			o.Resources = &r
		}, "Resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := accountsJob("up")
			tt.opts(&o)
			_, err := Job(o)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("error %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestJobMeshArgs(t *testing.T) {
	tests := []struct {
		mesh   Mesh
		native bool
		args   []string
		want   string
	}{
		{MeshNone, false, []string{"up"}, "up"},
		{MeshLinkerd, false, []string{"up"}, "up --wait-proxy=linkerd --sidecar-shutdown=linkerd"},
		{MeshIstio, false, []string{"down", "--to", "3"}, "down --to 3 --wait-proxy=istio --sidecar-shutdown=istio"},
		{MeshIstio, false, []string{"repair", "--resume"}, "repair --resume --wait-proxy=istio --sidecar-shutdown=istio"},
		{MeshIstio, true, []string{"redo"}, "redo"},
		{MeshLinkerd, false, []string{"up", "--sidecar-shutdown", "auto", "--wait-proxy=auto"}, "up --sidecar-shutdown auto --wait-proxy=auto"},
		{MeshLinkerd, true, []string{"status"}, "status"},
	}
	for _, tt := range tests {
		o := accountsJob(tt.args...)
		o.Mesh, o.NativeSidecar = tt.mesh, tt.native
		job, err := Job(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "); got != tt.want {
			t.Errorf("%s native=%v %v: args %q, want %q", tt.mesh, tt.native, tt.args, got, tt.want)
		}
	}
}

// TestJobTable: goose's -table travels into the pod as SHIPLOCK_TABLE, read
// by every shiplock command there (up, await); the default renders nothing.
func TestJobTable(t *testing.T) {
	for _, tt := range []struct{ table, want string }{{"", ""}, {"goose_db_version", ""}, {"migr.app_versions", "migr.app_versions"}} {
		o := accountsJob("up")
		o.Table = tt.table
		job, err := Job(o)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "SHIPLOCK_TABLE" {
				got = e.Value
			}
		}
		if got != tt.want {
			t.Errorf("Table %q renders SHIPLOCK_TABLE=%q; want %q", tt.table, got, tt.want)
		}
	}
}
