package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// migrationSet is one generated set of n migrations in every format the
// tools read.
type migrationSet struct {
	n          int
	gooseDir   string // goose format: read by goose and shiplock
	migrateDir string // golang-migrate format: N_name.up.sql / .down.sql
	allSQL     string // every Up concatenated, for psql -1 -f
}

// rowsPerSeed is how many rows every tenth migration inserts into its own
// table.
const rowsPerSeed = 100

// upSQL is migration i (1-based): a table and an index; migration 1 also
// creates bench_log, and every tenth inserts rows into its table and one
// row into bench_log, so that a migration applied twice shows up in the
// counts even when its CREATE TABLE would not fail (bench_log has no key
// on purpose).
func upSQL(i int) string {
	var b strings.Builder
	t := fmt.Sprintf("t_%05d", i)
	if i == 1 {
		b.WriteString("CREATE TABLE bench_log (version bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp());\n")
	}
	fmt.Fprintf(&b, "CREATE TABLE %s (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n", t)
	fmt.Fprintf(&b, "CREATE INDEX %s_name_idx ON %s (name);\n", t, t)
	if i%10 == 0 {
		fmt.Fprintf(&b, "INSERT INTO %s (id, name) SELECT g, 'row ' || g FROM generate_series(1, %d) AS g;\n", t, rowsPerSeed)
		fmt.Fprintf(&b, "INSERT INTO bench_log (version) VALUES (%d);\n", i)
	}
	return b.String()
}

func downSQL(i int) string {
	s := fmt.Sprintf("DROP TABLE t_%05d;\n", i)
	if i == 1 {
		s += "DROP TABLE bench_log;\n"
	}
	return s
}

// seeded is how many migrations of a set of n insert rows.
func seeded(n int) int { return n / 10 }

// generate writes the set of n migrations under root/<n>, replacing what
// was there.
func generate(root string, n int) (*migrationSet, error) {
	dir := filepath.Join(root, fmt.Sprint(n))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	s := &migrationSet{
		n:          n,
		gooseDir:   filepath.Join(dir, "goose"),
		migrateDir: filepath.Join(dir, "migrate"),
		allSQL:     filepath.Join(dir, "all.sql"),
	}
	for _, d := range []string{s.gooseDir, s.migrateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var all strings.Builder
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%05d_create_t_%05d", i, i)
		up, down := upSQL(i), downSQL(i)
		goose := "-- +goose Up\n" + up + "\n-- +goose Down\n" + down
		files := map[string]string{
			filepath.Join(s.gooseDir, name+".sql"):        goose,
			filepath.Join(s.migrateDir, name+".up.sql"):   up,
			filepath.Join(s.migrateDir, name+".down.sql"): down,
		}
		for p, body := range files {
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
		all.WriteString(up)
	}
	if err := os.WriteFile(s.allSQL, []byte(all.String()), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}
