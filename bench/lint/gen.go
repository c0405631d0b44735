package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shiplock/shiplock/lint"
)

// noiseSites are the lines where a finding is noise on a goose file: the
// DROPs of a Down section, and plain indexes on a table created in the
// same file, by file name.
type noiseSites struct {
	down, index map[string]map[int]bool
}

type noiseCount struct{ down, index int }

func (n noiseSites) count(fs []finding, squawk bool) noiseCount {
	var c noiseCount
	for _, f := range fs {
		rule := f.rule
		if squawk {
			rule = squawkRules[rule]
		}
		switch {
		case (rule == lint.RuleDropTable || rule == lint.RuleDropColumn || rule == lint.RuleCreateIndex) && n.down[f.file][f.line]:
			c.down++
		case rule == lint.RuleCreateIndex && n.index[f.file][f.line]:
			c.index++
		}
	}
	return c
}

// generate writes n goose files into dir. File i creates t_i and a plain
// index on it; every 5th adds a column with a volatile default to users
// (a table no file creates, so it exists), every 7th indexes users
// without CONCURRENTLY, every 10th backfills its own table; each Down
// drops what its Up made.
func generate(dir string, n int) (noiseSites, error) {
	ns := noiseSites{down: map[string]map[int]bool{}, index: map[string]map[int]bool{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ns, err
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%05d_create_t_%05d.sql", i, i)
		var lines []string
		add := func(format string, args ...any) int {
			lines = append(lines, fmt.Sprintf(format, args...))
			return len(lines)
		}
		ns.down[name], ns.index[name] = map[int]bool{}, map[int]bool{}
		add("-- +goose Up")
		add("CREATE TABLE t_%05d (id bigint PRIMARY KEY, name text, created_at timestamptz NOT NULL DEFAULT now());", i)
		ns.index[name][add("CREATE INDEX t_%05d_name_idx ON t_%05d (name);", i, i)] = true
		if i%5 == 0 {
			add("ALTER TABLE users ADD COLUMN c_%05d timestamptz DEFAULT clock_timestamp();", i)
		}
		if i%7 == 0 {
			add("CREATE INDEX users_c_%05d_idx ON users (id);", i)
		}
		if i%10 == 0 {
			add("INSERT INTO t_%05d (id, name) SELECT g, 'n' || g FROM generate_series(1, 100) g;", i)
			add("UPDATE t_%05d SET name = upper(name) WHERE id < 50;", i)
		}
		add("")
		add("-- +goose Down")
		if i%7 == 0 {
			ns.down[name][add("DROP INDEX users_c_%05d_idx;", i)] = true
		}
		if i%5 == 0 {
			ns.down[name][add("ALTER TABLE users DROP COLUMN c_%05d;", i)] = true
		}
		ns.down[name][add("DROP TABLE t_%05d;", i)] = true
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return ns, err
		}
	}
	return ns, nil
}
