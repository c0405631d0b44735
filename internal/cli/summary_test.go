package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// The summaries of redo and repair say what happened: redo reverted one
// migration and applied it again; repair names the interrupted version and
// what it did, and with nothing to repair gives the real version.
func TestRedoAndRepairSummaries(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	})
	check := func(wantCode int, want string, args ...string) {
		t.Helper()
		code, out := run(ctx, append(args, "--dir", dir, "--database-url", url)...)
		if int(code) != wantCode || !strings.Contains(out, want) {
			t.Fatalf("shiplock %s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), code, wantCode, want, out)
		}
	}
	check(0, "applied 2 migrations, now at version 2 (was 0) in ", "up")
	check(0, "reverted 1 migration and applied 1 migration, now at version 2 (was 2) in ", "redo")
	check(0, "nothing to repair: no migration was interrupted, at version 2\n", "repair", "--forget")

	// A NO TRANSACTION migration whose second statement fails leaves a
	// marker: forgetting it says so, at version 2.
	broken := "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE c (id int);\nSELECT * FROM missing;\n-- +goose Down\nDROP TABLE c;\n"
	if err := os.WriteFile(filepath.Join(dir, "00003_c.sql"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "failed at version 2; nothing changed", "up")
	check(0, "interrupted version 3: forgotten, now at version 2 (was 2) in ", "repair", "--forget")
}
