package e2e

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// newMySQL returns a new, empty MariaDB database: its URL, its settings
// and a handle for the test's own queries, closed when the test ends.
func newMySQL(t *testing.T) (string, *driver.Config, *sql.DB) {
	t.Helper()
	url := testdb.MySQL(t)
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return url, cfg, db
}

// mysqlExampleDir is examples/mysql/migrations: a DDL file, a data-only
// file and a file mixing both.
func mysqlExampleDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "mysql", "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// mysqlExampleState is what the example leaves: the newest version, the
// statuses' labels and whether orders has its note column.
func mysqlExampleState(t *testing.T, db *sql.DB) (version int64, labels string, note bool) {
	t.Helper()
	var tables int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'goose_db_version'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables == 1 {
		if err := db.QueryRow("SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
	}
	// Absent tables read as empty.
	_ = db.QueryRow("SELECT COALESCE(GROUP_CONCAT(label ORDER BY code SEPARATOR ','), '') FROM order_statuses").Scan(&labels)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'note'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return version, labels, n == 1
}

// TestMySQLExample runs examples/mysql with the built binary on MariaDB, as
// its README shows: up, status, down to 0 and up again, and refuses
// --tx-mode all (its DDL would commit the one transaction half-way).
func TestMySQLExample(t *testing.T) {
	t.Parallel()
	url, _, db := newMySQL(t)
	dir := mysqlExampleDir(t)
	env := cleanEnv("DATABASE_URL="+url, "SHIPLOCK_DIR="+dir)

	if code, out := runShiplock(t, env, "up", "--tx-mode", "all"); code != 3 || !strings.Contains(out, "00001_create_orders.sql:4") || !strings.Contains(out, "use --tx-mode file") {
		t.Fatalf("up --tx-mode all: exit %d (want 3, refused before the database is changed)\n%s", code, out)
	}
	if v, _, _ := mysqlExampleState(t, db); v != 0 {
		t.Fatalf("version %d after the refused run, want nothing applied", v)
	}
	if code, out := runShiplock(t, env, "up"); code != 0 || !strings.Contains(out, "now at version 3") {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	if v, labels, note := mysqlExampleState(t, db); v != 3 || labels != "New,Paid,Shipped to customer" || !note {
		t.Fatalf("after up: version %d, labels %q, note column %v", v, labels, note)
	}
	if code, out := runShiplock(t, env, "status"); code != 0 || !strings.Contains(out, "00003_add_note.sql") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if code, out := runShiplock(t, env, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	if code, out := runShiplock(t, env, "down", "--to", "0"); code != 0 {
		t.Fatalf("down --to 0: exit %d\n%s", code, out)
	}
	if v, labels, note := mysqlExampleState(t, db); v != 0 || labels != "" || note {
		t.Fatalf("after down --to 0: version %d, labels %q, note column %v", v, labels, note)
	}
	if code, out := runShiplock(t, env, "up"); code != 0 {
		t.Fatalf("up again: exit %d\n%s", code, out)
	}
	if v, labels, _ := mysqlExampleState(t, db); v != 3 || labels != "New,Paid,Shipped to customer" {
		t.Fatalf("after up again: version %d, labels %q", v, labels)
	}
}

// TestKubeRunJobPatternMySQL: the example's migrations in a migration
// image, run as a Job on the real control plane against MariaDB, with the
// user and password from a Secret (kube run --db-driver mysql), then the
// out-of-band rollback.
func TestKubeRunJobPatternMySQL(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	_, cfg, db := newMySQL(t)
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Client.CoreV1().Secrets(env.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-db"},
		StringData: map[string]string{"username": cfg.User, "password": cfg.Passwd},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	flags := []string{
		"--kubeconfig", env.Kubeconfig, "-n", env.Namespace,
		"--image", kubetest.MigrationImage(t, mysqlExampleDir(t)),
		"--db-driver", "mysql", "--db-host", host, "--db-port", port, "--db-name", cfg.DBName,
		"--secret", "orders-db",
	}

	code, out, errOut := kubeRun(t, flags, "up")
	if code != 0 || !strings.Contains(errOut, "succeeded (deleted): applied 3 migrations, now at version 3 (was 0)") {
		t.Fatalf("kube run -- up: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if cfg.Passwd != "" && (strings.Contains(out, cfg.Passwd) || strings.Contains(errOut, cfg.Passwd)) {
		t.Fatal("the password appears in the output")
	}
	if v, labels, note := mysqlExampleState(t, db); v != 3 || labels != "New,Paid,Shipped to customer" || !note {
		t.Fatalf("after the Job: version %d, labels %q, note column %v", v, labels, note)
	}
	code, out, errOut = kubeRun(t, flags, "down", "--to", "2")
	if code != 0 || !strings.Contains(errOut, "reverted 1 migration, now at version 2 (was 3)") {
		t.Fatalf("kube run -- down --to 2: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if v, labels, note := mysqlExampleState(t, db); v != 2 || labels != "New,Paid,Shipped" || note {
		t.Fatalf("after the rollback Job: version %d, labels %q, note column %v", v, labels, note)
	}
}
