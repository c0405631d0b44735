package migrate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// encodedDB creates a database with the given server encoding and returns
// its URL; the session's client_encoding follows it.
func encodedDB(t *testing.T, encoding string) string {
	t.Helper()
	srv := testdb.PostgresServer(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_enc_" + hex.EncodeToString(b)
	admin := openPG(t, srv.AdminURL)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING '"+encoding+"' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return srv.URL(name, "", "")
}

// TestInvalidUTF8 on PostgreSQL: statement bytes that are not UTF-8 fail
// before anything runs, with file:line, where the client encoding is UTF8;
// a LATIN1 or SQL_ASCII database takes them, as from goose. Bytes in a
// comment goose drops are never sent and never matter.
func TestInvalidUTF8(t *testing.T) {
	files := fstest.MapFS{
		"00001_a.sql": mapFile("-- +goose Up\n-- caf\xe9: a comment goose drops\nCREATE TABLE a (name text);\n"),
		"00002_b.sql": mapFile("-- +goose Up\nINSERT INTO a VALUES ('ok');\nINSERT INTO a\n  VALUES ('caf\xe9');\n"),
	}
	ctx := context.Background()
	t.Run("UTF8", func(t *testing.T) {
		url := encodedDB(t, "UTF8")
		_, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{})
		var pe *sqlfile.ParseError
		if !errors.As(err, &pe) || pe.File != "00002_b.sql" || pe.Line != 4 {
			t.Fatalf("up = %v, want a ParseError at 00002_b.sql:4", err)
		}
		// Nothing ran: not even the valid first migration, nor goose's table.
		var n int
		if err := openPG(t, url).QueryRowContext(ctx, "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'goose_db_version')").Scan(&n); err != nil || n != 0 {
			t.Fatalf("after the refusal: %d tables, %v; want none", n, err)
		}
		// Up to the valid version runs: only what is planned is checked.
		if res, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil || res.To != 1 {
			t.Fatalf("up --to 1 = %+v, %v", res, err)
		}
	})
	for _, enc := range []string{"LATIN1", "SQL_ASCII"} {
		t.Run(enc, func(t *testing.T) {
			url := encodedDB(t, enc)
			res, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{})
			if err != nil || res.To != 2 {
				t.Fatalf("up = %+v, %v; want version 2", res, err)
			}
			var raw []byte
			if err := openPG(t, url).QueryRowContext(ctx, "SELECT convert_to(name, '"+enc+"') FROM a WHERE name <> 'ok'").Scan(&raw); err != nil || string(raw) != "caf\xe9" {
				t.Fatalf("stored %q, %v; want the file's bytes", raw, err)
			}
		})
	}
}
