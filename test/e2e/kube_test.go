package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// kubeDB is a PostgreSQL database for pods of the test cluster, reached
// with a password held in a Secret of the test's namespace.
type kubeDB struct {
	env    *kubetest.Env
	srv    *testdb.Server
	name   string
	secret string
}

func newKubeDB(t *testing.T, env *kubetest.Env) kubeDB {
	t.Helper()
	srv := testdb.PostgresServer(t)
	role := srv.CreateRole(t)
	name := srv.CreateDatabase(t, role.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := env.Client.CoreV1().Secrets(env.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "account-secret"},
		StringData: map[string]string{"username": role.Name, "password": role.Password},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kubeDB{env: env, srv: srv, name: name, secret: "account-secret"}
}

// flags are the kube run/job flags that run the migrations of dir, built
// into a migration image (kubetest.MigrationImage), against this database.
func (d kubeDB) flags(t *testing.T, dir string) []string {
	t.Helper()
	return d.imageFlags(kubetest.MigrationImage(t, dir))
}

// imageFlags are the kube run/job flags that run the migration image
// image (migrations in its /migrations, the default --migrations-dir)
// against this database.
func (d kubeDB) imageFlags(image string) []string {
	return []string{
		"--kubeconfig", d.env.Kubeconfig, "-n", d.env.Namespace,
		"--image", image,
		"--db-host", d.srv.Host, "--db-port", strconv.Itoa(d.srv.Port), "--db-name", d.name,
		"--secret", d.secret, "--db-sslmode", "disable",
	}
}

// srvExec runs SQL on the database as the superuser.
func (d kubeDB) srvExec(t *testing.T, q string) (int64, error) {
	db, err := postgres.Open(d.srv.URL(d.name, "", ""))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	r, err := db.Exec(q)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (d kubeDB) version(t *testing.T) int64 {
	return queryInt(t, d.srv.URL(d.name, "", ""), "SELECT max(version_id) FROM goose_db_version")
}

// kubeRun runs "shiplock kube run FLAGS -- ARGS" and returns its exit code,
// stdout (the pod's logs) and stderr (the outcome).
func kubeRun(t *testing.T, flags []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(shiplockBin, append(append(append([]string{"kube", "run", "--log-format", "text"}, flags...), "--"), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestKubeRunJobPattern: the Job pattern on the real control plane.
func TestKubeRunJobPattern(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	db := newKubeDB(t, env)
	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	})

	code, out, errOut := kubeRun(t, db.flags(t, dir), "up")
	if code != 0 || !strings.Contains(out, "applied 2 migrations, now at version 2 (was 0)") ||
		!strings.Contains(errOut, "succeeded (deleted): applied 2 migrations, now at version 2 (was 0)") {
		t.Fatalf("kube run -- up: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if v := db.version(t); v != 2 {
		t.Fatalf("version %d after kube run up, want 2", v)
	}

	// The same release again: nothing to do.
	code, out, errOut = kubeRun(t, db.flags(t, dir), "up")
	if code != 0 || !strings.Contains(errOut, "nothing to do, at version 2") {
		t.Fatalf("second kube run -- up: exit %d\n%s\n%s", code, out, errOut)
	}

	// The out-of-band rollback.
	code, out, errOut = kubeRun(t, db.flags(t, dir), "down", "--to", "1")
	if code != 0 || !strings.Contains(errOut, "reverted 1 migration, now at version 1 (was 2)") {
		t.Fatalf("kube run -- down --to 1: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := db.version(t); v != 1 {
		t.Fatalf("version %d after down --to 1, want 1", v)
	}

	// A broken migration: the Job fails at once (exit 1 is permanent), the
	// exit code comes back, nothing was retried, the Job is kept.
	writeFile(t, dir, "00003_broken.sql", "-- +goose Up\nSELECT * FROM missing_table;\n")
	code, out, errOut = kubeRun(t, db.flags(t, dir), "up")
	if code != 1 || !strings.Contains(errOut, "failed, exit code 1 (PodFailurePolicy") ||
		!strings.Contains(errOut, `00003_broken.sql:2: apply version 3: ERROR: relation "missing_table" does not exist`) {
		t.Fatalf("kube run -- up with a broken file: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "attempts") {
		t.Fatalf("a permanent failure was retried:\n%s", errOut)
	}
	if v := db.version(t); v != 2 {
		t.Fatalf("version %d after the broken run, want 2 (file mode keeps the good ones)", v)
	}
}
