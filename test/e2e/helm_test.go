package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// helmRelease runs the helm binary against the test's cluster and
// namespace, with its own cache and configuration directories.
type helmRelease struct {
	bin, home string
	env       *kubetest.Env
}

func (h helmRelease) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(h.bin, append(args, "--kubeconfig", h.env.Kubeconfig, "--namespace", h.env.Namespace)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+h.home+"/cache", "HELM_CONFIG_HOME="+h.home+"/config", "HELM_DATA_HOME="+h.home+"/data")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		h.env.Dump(t)
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// accountsValues are the chart's values for release r of the accounts
// example on the test cluster: the gate pattern, the app container of
// accountsDeployment, and a Secret the chart creates.
func accountsValues(t *testing.T, db kubeDB, role testdb.Role, r release) string {
	t.Helper()
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(accountsDeployment(t, db, r)), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	values := map[string]any{
		"pattern": "gate",
		"image":   map[string]any{"repository": kubetest.ImagePrefix + "accounts-migrate"},
		"app": map[string]any{
			"name":     "accounts",
			"replicas": *d.Spec.Replicas,
			"image":    map[string]any{"repository": kubetest.ImagePrefix + "accounts", "tag": r.name},
			"env":      c.Env, "ports": c.Ports, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe,
			"resources": c.Resources, "securityContext": c.SecurityContext,
			"terminationGracePeriodSeconds": 5,
		},
		"database": map[string]any{
			"host": db.srv.Host, "port": db.srv.Port, "name": db.name, "sslmode": "disable",
			"secret": map[string]any{"create": true, "name": db.secret, "username": role.Name, "password": role.Password},
		},
	}
	b, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "values-"+r.name+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHelmAccounts delivers the accounts example with the chart
// (charts/shiplock, gate pattern): a first install with a Secret the chart
// creates (a hook ordered before the migration Job, which otherwise could
// not start), an upgrade v1 -> v2 (the migration applied once, the app
// available), the same upgrade again (the hook Job runs again and applies
// nothing), "helm rollback" of the app (no hook runs; v1 passes its gate on
// the newer schema), then v2's schema change undone out of band with
// "shiplock kube run -- down --to". The service answers after each step.
func TestHelmAccounts(t *testing.T) {
	t.Parallel()
	start := time.Now()
	kubetest.RequireImages(t)
	h := helmRelease{bin: kubetest.Helm(t), home: t.TempDir()}
	env := kubetest.New(t)
	h.env = env
	srv := testdb.PostgresServer(t)
	role := srv.CreateRole(t)
	// No Secret yet: the chart creates it.
	db := kubeDB{env: env, srv: srv, name: srv.CreateDatabase(t, role.Name), secret: "account-secret"}
	v1, v2 := releases()
	const job = "accounts-shiplock-migrate"
	chart := filepath.Join("..", "..", "charts", "shiplock")
	versions := func() int64 {
		return queryInt(t, srv.URL(db.name, "", ""), "SELECT count(*) FROM goose_db_version")
	}
	// rolledOut: every pod is of the Deployment's current template, and
	// available.
	rolledOut := func(d *appsv1.Deployment) bool {
		return kubetest.DeploymentAvailable(d) && d.Status.ObservedGeneration == d.Generation &&
			d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Status.Replicas == *d.Spec.Replicas
	}
	// migrated returns the hook Job's UID and its pod's termination message.
	migrated := func() (types.UID, string) {
		t.Helper()
		j := env.WaitForJob(t, job, time.Minute, kubetest.JobFinished)
		if kubetest.JobCondition(j, batchv1.JobComplete) == nil {
			t.Fatalf("hook Job did not complete: %s", kubetest.DescribeJob(j))
		}
		// By UID: the pods of the Job Helm deleted may not be gone yet.
		pods := env.Pods(t, batchv1.ControllerUidLabel+"="+string(j.UID))
		if len(pods) != 1 {
			t.Fatalf("hook Job %s has %d pods, want 1 (no retries)", job, len(pods))
		}
		s := pods[0].Status.ContainerStatuses
		if len(s) != 1 || s[0].State.Terminated == nil {
			t.Fatalf("hook pod: %s", kubetest.DescribePod(&pods[0]))
		}
		return j.UID, s[0].State.Terminated.Message
	}

	// Install v1: helm returns once the hook Job has completed, which it
	// can only do if the Secret was created before it.
	h.run(t, "install", "accounts", chart, "-f", accountsValues(t, db, role, v1), "--timeout", "5m")
	uid1, msg := migrated()
	if !strings.Contains(msg, fmt.Sprintf("now at version %d", accountsV1)) {
		t.Fatalf("install: the hook Job says %q", msg)
	}
	available(t, env)
	if v := db.version(t); v != accountsV1 {
		t.Fatalf("version %d after install, want %d", v, accountsV1)
	}
	created := api(t, env, "POST", "/accounts", map[string]any{"email": "ada@example.com", "display_name": "Ada"}, http.StatusCreated)
	id := strconv.FormatInt(int64(created["id"].(float64)), 10)

	// Upgrade to v2: the migration runs once, before the new pods.
	h.run(t, "upgrade", "accounts", chart, "-f", accountsValues(t, db, role, v2), "--timeout", "5m")
	uid2, msg := migrated()
	if uid2 == uid1 || !strings.Contains(msg, fmt.Sprintf("now at version %d", accountsV2)) {
		t.Fatalf("upgrade: Job %s (was %s) says %q", uid2, uid1, msg)
	}
	env.WaitForDeployment(t, "accounts", 3*time.Minute, rolledOut)
	if n := queryInt(t, srv.URL(db.name, "", ""), fmt.Sprintf("SELECT count(*) FROM goose_db_version WHERE version_id = %d", accountsV2)); n != 1 {
		t.Fatalf("v2's migration recorded %d times, want once", n)
	}
	if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["served_by"] != "v2" || got["email"] != "ada@example.com" {
		t.Fatalf("v2 answer = %v", got)
	}
	rows := versions()

	// The same upgrade again: the hook Job runs again and applies nothing.
	h.run(t, "upgrade", "accounts", chart, "-f", accountsValues(t, db, role, v2), "--timeout", "5m")
	uid3, msg := migrated()
	if uid3 == uid2 || !strings.Contains(msg, "nothing to do") {
		t.Fatalf("re-run: Job %s (was %s) says %q", uid3, uid2, msg)
	}
	if n := versions(); n != rows {
		t.Fatalf("the re-run wrote version rows: %d, was %d", n, rows)
	}

	// helm rollback of the app to revision 1 (v1): no hook runs, and v1's
	// pods pass their gate on v2's schema.
	h.run(t, "rollback", "accounts", "1", "--timeout", "5m")
	env.WaitForDeployment(t, "accounts", 3*time.Minute, rolledOut)
	if uid, _ := migrated(); uid != uid3 {
		t.Fatalf("helm rollback ran the migration hook (Job %s, was %s)", uid, uid3)
	}
	if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["served_by"] != "v1" {
		t.Fatalf("after helm rollback: %v", got)
	}

	// Then the schema, out of band, with the newer image.
	undoV2Schema(t, env, db, id)
	t.Logf("install, 2 upgrades, rollback and down took %s", time.Since(start).Round(time.Second))
}
