package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// A wrong password with libpq's default sslmode (prefer) against a server
// without TLS: pgx tries TLS, is refused, and tries again in plaintext,
// where the password fails. Only the password failure is reported, not
// the refused TLS attempt before it.
func TestWrongPasswordOneReason(t *testing.T) {
	srv := testdb.PostgresServer(t)
	role := srv.CreateRole(t)
	db := srv.CreateDatabase(t, role.Name)
	url := strings.Replace(srv.URL(db, role.Name, role.Password+"-wrong"), "sslmode=disable", "sslmode=prefer", 1)
	code, out := run(context.Background(), "wait", "--database-url", url)
	t.Logf("%s", out)
	if code != exitcode.Auth || !strings.Contains(out, "password authentication failed") || strings.Contains(out, "tls") {
		t.Errorf("exit %d, want %d with only the password failure:\n%s", code, exitcode.Auth, out)
	}
}

// PostgreSQL's DETAIL and HINT follow the error, on stderr and in the
// termination message, as psql shows them.
func TestErrorDetailAndHint(t *testing.T) {
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{
		"00001_a.sql":    "-- +goose Up\nCREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_dup.sql":  "-- +goose Up\nINSERT INTO a VALUES (1);\n-- +goose Down\nSELECT 1;\n",
		"00003_hint.sql": "-- +goose Up\nSELECT lower(1, 2);\n-- +goose Down\nSELECT 1;\n",
	})
	term := filepath.Join(t.TempDir(), "termination-log")
	code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--termination-log", term)
	if code != exitcode.Failed || !strings.Contains(out, "\nDETAIL: Key (id)=(1) already exists.\n") {
		t.Errorf("exit %d, want %d and the DETAIL line:\n%s", code, exitcode.Failed, out)
	}
	if b, err := os.ReadFile(term); err != nil || !strings.Contains(string(b), "DETAIL: Key (id)=(1) already exists.") {
		t.Errorf("termination message %q (%v) lacks the DETAIL", b, err)
	}
	if err := os.Remove(filepath.Join(dir, "00002_dup.sql")); err != nil {
		t.Fatal(err)
	}
	code, out = run(context.Background(), "up", "--dir", dir, "--database-url", url)
	if code != exitcode.Failed || !strings.Contains(out, "\nHINT: No function matches the given name and argument types.") {
		t.Errorf("exit %d, want %d and the HINT line:\n%s", code, exitcode.Failed, out)
	}
}
