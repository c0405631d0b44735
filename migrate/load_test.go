package migrate_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadIgnoresWhatGooseIgnores reads one directory with goose's own
// collection (goose.CollectMigrations, what the goose command runs) and
// with Load: the same versions from the same files.
func TestLoadIgnoresWhatGooseIgnores(t *testing.T) {
	up := "-- +goose Up\nSELECT 1;\n"
	dir := writeTree(t, map[string]string{
		"00001_a.sql":       up,
		"00002_b.sql":       up,
		"00003_c.go":        "package m",
		"README.md":         "# migrations",
		"0001_notes.md":     "notes",
		"00004_notes.md":    "notes",
		"00005_notes.txt":   "notes",
		"00006_a_test.go":   "package m",
		"helpers.go":        "package m",
		"6x_helpers.go":     "package m",
		"sub/00007_d.sql":   up,
		"00008_e.sql.bak":   "junk",
		"00009_f.SQL":       "junk",
		"00010_g.sql~":      "junk",
		"00011_h.yaml":      "junk",
		"notes/00012_i.txt": "junk",
	})
	gm, err := goose.CollectMigrations(dir, 0, math.MaxInt64)
	if err != nil {
		t.Fatalf("goose: %v", err)
	}
	var want []string
	for _, m := range gm {
		want = append(want, filepath.Base(m.Source))
	}
	migs, err := migrate.Load(os.DirFS(dir), ".", nil, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, m := range migs {
		got = append(got, m.Source)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Load read %q, goose reads %q", got, want)
	}
	if len(got) != 3 {
		t.Fatalf("want 3 migrations, got %q", got)
	}
	// goose's provider (the library API) reads the same files; it needs
	// the Go migration registered, and no connection to list them.
	db, err := sql.Open("pgx", "postgres://127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(dir),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goose.NewGoMigration(3, &goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }}, nil)))
	if err != nil {
		t.Fatalf("goose provider: %v", err)
	}
	var fromProvider []string
	for _, s := range p.ListSources() {
		fromProvider = append(fromProvider, filepath.Base(s.Path))
	}
	if !slices.Equal(got, fromProvider) {
		t.Fatalf("Load read %q, goose's provider reads %q", got, fromProvider)
	}
}

// TestLoadRejectsMisnamedSQL: a .sql name without a version is an error
// for goose's command as for Load, never a file skipped in silence.
func TestLoadRejectsMisnamedSQL(t *testing.T) {
	dir := writeTree(t, map[string]string{"00001_a.sql": "-- +goose Up\n", "V2__b.sql": "-- +goose Up\n"})
	if _, err := goose.CollectMigrations(dir, 0, math.MaxInt64); err == nil {
		t.Fatal("goose accepted V2__b.sql")
	}
	_, err := migrate.Load(os.DirFS(dir), ".", nil, nil)
	var fe *migrate.FileError
	if !errors.As(err, &fe) || fe.File != "V2__b.sql" {
		t.Fatalf("Load = %v, want a *FileError naming V2__b.sql", err)
	}
}

// deniedFS returns a permission error for one file, as a file that is not
// readable does for a user other than root.
type deniedFS struct {
	fs.FS
	name string
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if name == d.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

// TestLoadRejectsUnusableFiles: a name that reads as a migration but leads
// to no readable regular file fails Load with a *FileError naming it.
func TestLoadRejectsUnusableFiles(t *testing.T) {
	up := "-- +goose Up\nSELECT 1;\n"
	t.Run("directory", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"00001_a.sql": up, "00003_x.sql/keep": ""})
		wantFileError(t, os.DirFS(dir), "00003_x.sql", "is a directory")
	})
	t.Run("broken-symlink", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"00001_a.sql": up})
		if err := os.Symlink("gone.sql", filepath.Join(dir, "00002_b.sql")); err != nil {
			t.Fatal(err)
		}
		wantFileError(t, os.DirFS(dir), "00002_b.sql", "broken symbolic link")
	})
	t.Run("symlink-to-file", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"00001_a.sql": up, "shared/b.sql": up})
		if err := os.Symlink("shared/b.sql", filepath.Join(dir, "00002_b.sql")); err != nil {
			t.Fatal(err)
		}
		if migs, err := migrate.Load(os.DirFS(dir), ".", nil, nil); err != nil || len(migs) != 2 {
			t.Fatalf("Load = %d, %v; want 2 migrations", len(migs), err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		fsys := deniedFS{FS: fstest.MapFS{"00001_a.sql": {Data: []byte(up)}, "00002_b.sql": {Data: []byte(up)}}, name: "00002_b.sql"}
		wantFileError(t, fsys, "00002_b.sql", "permission denied")
	})
	t.Run("missing-directory", func(t *testing.T) {
		wantFileError(t, os.DirFS(filepath.Join(t.TempDir(), "nope")), ".", "cannot read the migrations directory")
	})
}

func wantFileError(t *testing.T, fsys fs.FS, file, msg string) {
	t.Helper()
	_, err := migrate.Load(fsys, ".", nil, nil)
	var fe *migrate.FileError
	if !errors.As(err, &fe) || fe.File != file || !strings.Contains(fe.Msg, msg) {
		t.Fatalf("Load = %v, want a *FileError naming %s: %s", err, file, msg)
	}
}

// TestLoadRejectsNUL: a NUL byte fails at load with its file and line.
func TestLoadRejectsNUL(t *testing.T) {
	fsys := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\nSELECT '\x00';\n")}}
	_, err := migrate.Load(fsys, ".", nil, nil)
	var pe *sqlfile.ParseError
	if !errors.As(err, &pe) || pe.File != "00001_a.sql" || pe.Line != 3 {
		t.Fatalf("Load = %v, want a *sqlfile.ParseError at 00001_a.sql:3", err)
	}
}

// TestChecksumIgnoresLineEndings: the same file with "\r\n" or "\n" line
// endings has one checksum, and the raw checksum shiplock recorded before
// is still recognised, in either direction of a conversion.
func TestChecksumIgnoresLineEndings(t *testing.T) {
	lf := "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	migs := load(t, fstest.MapFS{"001_a.sql": {Data: []byte(lf)}, "002_a.sql": {Data: []byte(crlf)}})
	if migs[0].Checksum != migs[1].Checksum {
		t.Fatalf("checksums differ: %s (LF) and %s (CRLF)", migs[0].Checksum, migs[1].Checksum)
	}
	if migs[0].Checksum != sha(lf) {
		t.Fatalf("an LF file's checksum changed: %s, want %s", migs[0].Checksum, sha(lf))
	}
	if !migs[1].MatchesChecksum(sha(crlf)) {
		t.Error("the raw checksum of an unchanged CRLF file is not recognised")
	}
	if !migs[0].MatchesChecksum(sha(crlf)) {
		t.Error("a CRLF file recorded raw, then converted to LF, is not recognised")
	}
	if migs[0].MatchesChecksum(sha(lf + "-- note\n")) {
		t.Error("a different file matches")
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
