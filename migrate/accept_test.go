package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

func mapFile(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// TestAcceptChecksum: an applied file edited on purpose blocks up (exit 4)
// until its checksum is accepted for that one version, under the lock;
// versions that are not applied are refused.
func TestAcceptChecksum(t *testing.T) {
	url := testdb.Postgres(t)
	ctx := context.Background()
	v1 := "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"
	v2 := "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"
	v3 := "-- +goose Up\nCREATE TABLE c (id int);\n"
	files := fstest.MapFS{"00001_a.sql": mapFile(v1), "00002_b.sql": mapFile(v2)}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	before := load(t, files)[0].Checksum

	// Reformatted: trailing spaces and a comment. up refuses.
	edited := fstest.MapFS{
		"00001_a.sql": mapFile("-- +goose Up\n-- the accounts table   \nCREATE TABLE a (id int);   \n-- +goose Down\nDROP TABLE a;\n"),
		"00002_b.sql": mapFile(v2),
		"00003_c.sql": mapFile(v3),
	}
	m := pgMigrator(t, url, edited, migrate.Options{LockTimeout: 300 * time.Millisecond})
	var ie *migrate.IntegrityError
	if _, err := m.Up(ctx, migrate.UpOptions{}); !errors.As(err, &ie) || ie.Problems[0].Kind != migrate.Edited {
		t.Fatalf("up after an edit = %v, want an IntegrityError (edited)", err)
	}

	// Under the migration lock: another holder makes it wait, then time out.
	holder := openPG(t, url)
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AcceptChecksum(ctx, 1); !errors.Is(err, migrate.ErrLockTimeout) {
		t.Fatalf("AcceptChecksum while another runner holds the lock = %v, want ErrLockTimeout", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	acc, err := m.AcceptChecksum(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	after := load(t, edited)[0].Checksum
	if !acc.Changed || acc.Old != before || acc.New != after || acc.File != "00001_a.sql" {
		t.Fatalf("AcceptChecksum = %+v, want old %s new %s", acc, before, after)
	}
	if problems, err := m.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("verify after accept = %v, %v; want no problem", problems, err)
	}
	again, err := m.AcceptChecksum(ctx, 1)
	if err != nil || again.Changed {
		t.Fatalf("accepting twice = %+v, %v; want unchanged", again, err)
	}

	// Refused: a pending version, and one with no file. Nothing changes.
	if _, err := m.AcceptChecksum(ctx, 3); !errors.Is(err, migrate.ErrNotApplied) {
		t.Fatalf("AcceptChecksum(pending 3) = %v, want ErrNotApplied", err)
	}
	var fe *migrate.FileError
	if _, err := m.AcceptChecksum(ctx, 99); !errors.As(err, &fe) {
		t.Fatalf("AcceptChecksum(99, no file) = %v, want a FileError", err)
	}
	res, err := m.Up(ctx, migrate.UpOptions{})
	if err != nil || res.To != 3 || len(res.Applied) != 1 {
		t.Fatalf("up after accept = %+v, %v; want 3 applied alone", res, err)
	}
	// Only version 1's record changed: with the original files, it alone
	// reads as edited (and 3 as having no file).
	problems, err := pgMigrator(t, url, files, migrate.Options{}).Verify(ctx)
	var edits []int64
	for _, p := range problems {
		if p.Kind == migrate.Edited {
			edits = append(edits, p.Version)
		}
	}
	if err != nil || len(edits) != 1 || edits[0] != 1 {
		t.Fatalf("verify with the original files = %v, %v; want only version 1 edited", problems, err)
	}
}

// TestLineEndingsDoNotCount on PostgreSQL: converting an applied file
// between LF and CRLF is not an edit, including for checksums recorded
// from the raw bytes before line endings stopped counting.
func TestLineEndingsDoNotCount(t *testing.T) {
	url := testdb.Postgres(t)
	ctx := context.Background()
	lf := "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	lfFiles := fstest.MapFS{"00001_a.sql": mapFile(lf)}
	crlfFiles := fstest.MapFS{"00001_a.sql": mapFile(crlf)}
	if _, err := pgMigrator(t, url, lfFiles, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	verifyClean := func(what string, files fstest.MapFS) {
		t.Helper()
		if problems, err := pgMigrator(t, url, files, migrate.Options{}).Verify(ctx); err != nil || len(problems) != 0 {
			t.Fatalf("%s: verify = %v, %v; want no problem", what, problems, err)
		}
		if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatalf("%s: up = %v", what, err)
		}
	}
	verifyClean("applied LF, now CRLF", crlfFiles)

	// A checksum recorded the old way, from a CRLF file's raw bytes.
	db := openPG(t, url)
	if _, err := db.ExecContext(ctx, "UPDATE shiplock_versions SET checksum = $1 WHERE version_id = 1", sha(crlf)); err != nil {
		t.Fatal(err)
	}
	verifyClean("recorded raw CRLF, still CRLF", crlfFiles)
	verifyClean("recorded raw CRLF, now LF", lfFiles)

	// Anything else still counts.
	spaced := fstest.MapFS{"00001_a.sql": mapFile(strings.Replace(lf, "int);", "int);  ", 1))}
	if problems, err := pgMigrator(t, url, spaced, migrate.Options{}).Verify(ctx); err != nil || len(problems) != 1 || problems[0].Kind != migrate.Edited {
		t.Fatalf("trailing spaces: verify = %v, %v; want edited", problems, err)
	}
}
