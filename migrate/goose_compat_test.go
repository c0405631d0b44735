package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

const compatDir = "testdata/compat"

// TestGooseCompatibility applies the same realistic directory with goose
// v3 and with shiplock, and each continuing the other, and compares the
// schemas (pg_dump --schema-only) and the goose_db_version rows.
func TestGooseCompatibility(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatalf("pg_dump not found (install postgresql-client): %v", err)
	}
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("postgres"); err != nil {
		t.Fatal(err)
	}
	type step struct {
		tool string // "goose" or "shiplock"
		to   int64  // 0: all
	}
	runs := map[string][]step{
		"goose":          {{"goose", 0}},
		"shiplock":       {{"shiplock", 0}},
		"goose-split":    {{"goose", 3}, {"goose", 0}},
		"goose-then-us":  {{"goose", 3}, {"shiplock", 0}},
		"us-then-goose":  {{"shiplock", 3}, {"goose", 0}},
		"goose-split-2":  {{"goose", 1}, {"goose", 0}},
		"goose-then-us2": {{"goose", 1}, {"shiplock", 0}},
	}
	dumps := map[string]string{}
	versions := map[string]string{}
	for name, steps := range runs {
		url := testdb.Postgres(t)
		for i, s := range steps {
			// A later session starts without the search_path that 00001
			// set in the first one, for goose as for shiplock; give it the
			// same one, as a deployment of such a directory would.
			connURL := url
			if i > 0 {
				sep := "?"
				if strings.Contains(url, "?") {
					sep = "&"
				}
				connURL += sep + "search_path=app,public"
			}
			db := openPG(t, connURL)
			switch s.tool {
			case "goose":
				var err error
				if s.to > 0 {
					err = goose.UpToContext(context.Background(), db, compatDir, s.to)
				} else {
					err = goose.UpContext(context.Background(), db, compatDir)
				}
				if err != nil {
					t.Fatalf("%s: goose up %d: %v", name, s.to, err)
				}
			case "shiplock":
				shiplockUp(t, db, s.to)
			}
			db.Close()
		}
		dumps[name] = pgDump(t, url)
		versions[name] = versionRows(t, url)
	}
	same := func(a, b string) {
		t.Helper()
		if dumps[a] != dumps[b] {
			t.Errorf("schema after %q differs from %q:\n--- %s\n%s\n--- %s\n%s", a, b, a, dumps[a], b, dumps[b])
		}
		if versions[a] != versions[b] {
			t.Errorf("goose_db_version after %q = %s, after %q = %s", a, versions[a], b, versions[b])
		}
	}
	same("shiplock", "goose")
	same("goose-then-us", "goose-split")
	same("us-then-goose", "goose-split")
	same("goose-then-us2", "goose-split-2")
	if !strings.Contains(dumps["goose"], "CREATE TABLE app.accounts") {
		t.Errorf("search_path set by 00001 did not carry over: accounts not in schema app:\n%s", dumps["goose"])
	}

	// Each tool reverts what the other applied.
	for _, tc := range []struct{ name, applyWith string }{{"goose reverts shiplock", "shiplock"}, {"shiplock reverts goose", "goose"}} {
		url := testdb.Postgres(t)
		db := openPG(t, url)
		if tc.applyWith == "shiplock" {
			shiplockUp(t, db, 0)
			if err := goose.DownToContext(context.Background(), db, compatDir, 0); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		} else {
			if err := goose.UpContext(context.Background(), db, compatDir); err != nil {
				t.Fatal(err)
			}
			m := migrate.New(db, postgres.Dialect{}, loadDir(t), migrate.Options{})
			if _, err := m.Down(context.Background(), 0); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		db.Close()
		if got := versionRows(t, url); got != "[0 true]" {
			t.Errorf("%s: goose_db_version = %s, want only the version-0 row", tc.name, got)
		}
		if dump := pgDump(t, url); strings.Contains(dump, "app.") {
			t.Errorf("%s: schema app left behind:\n%s", tc.name, dump)
		}
	}
}

func loadDir(t testing.TB) []*migrate.Migration {
	t.Helper()
	migs, err := migrate.Load(os.DirFS(compatDir), ".", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func shiplockUp(t testing.TB, db *sql.DB, to int64) {
	t.Helper()
	m := migrate.New(db, postgres.Dialect{}, loadDir(t), migrate.Options{})
	if _, err := m.Up(context.Background(), migrate.UpOptions{To: to}); err != nil {
		t.Fatalf("shiplock up %d: %v", to, err)
	}
}

func openPG(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// pgDump returns the schema without shiplock's own table and without the
// lines pg_dump makes unique per run.
func pgDump(t testing.TB, url string) string {
	t.Helper()
	return testdb.PgDump(t, url, "--schema-only", "--no-owner", "--no-privileges", "--exclude-table=shiplock_versions")
}

func versionRows(t testing.TB, url string) string {
	t.Helper()
	db := openPG(t, url)
	defer db.Close()
	return versionRowsOn(t, db)
}

// versionRowsOn is goose_db_version's (version_id, is_applied) rows in id
// order, read on db.
func versionRowsOn(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT version_id, is_applied FROM goose_db_version ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v int64
		var applied bool
		if err := rows.Scan(&v, &applied); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %v", v, applied))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// TestGooseSerialLayout continues a database whose goose_db_version has the
// layout of older goose releases (serial id, nullable tstamp).
func TestGooseSerialLayout(t *testing.T) {
	url := testdb.Postgres(t)
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE goose_db_version (
		id serial NOT NULL,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NULL default now(),
		PRIMARY KEY(id)
	);
	INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), (3, false);`); err != nil {
		t.Fatal(err)
	}
	// Version 3 was rolled back the old way (an is_applied=false row):
	// applied are 1 and 2. Create what they would have.
	if _, err := db.Exec(`CREATE SCHEMA app; SET search_path = app, public;`); err != nil {
		t.Fatal(err)
	}
	m := migrate.New(db, postgres.Dialect{}, loadDir(t), migrate.Options{})
	st, err := m.Status(context.Background())
	if err != nil || st.Current != 2 || st.Pending != 5 {
		t.Fatalf("Status = current %d, pending %d, %v; want 2 and 5", st.Current, st.Pending, err)
	}
	if _, err := db.Exec(`SET search_path = app, public;
		CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, status text NOT NULL DEFAULT 'open', created_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), amount_cents bigint NOT NULL);`); err != nil {
		t.Fatal(err)
	}
	res, err := m.Up(context.Background(), migrate.UpOptions{})
	if err != nil || res.From != 2 || res.To != 7 || len(res.Applied) != 5 {
		t.Fatalf("Up on the serial layout = %+v, %v", res, err)
	}
	if got := versionRows(t, url); got != "[0 true 1 true 2 true 3 true 3 false 3 true 4 true 5 true 6 true 7 true]" {
		t.Fatalf("rows = %s", got)
	}
}
