package lint

import (
	"testing"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// FuzzStatements: any statement text is tokenized, split and checked
// without a panic, in both string modes.
func FuzzStatements(f *testing.F) {
	for _, s := range []string{
		"CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
		"ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID, ALTER a TYPE varchar(3) USING a",
		"VACUUM (FULL", "REINDEX (", "WITH x AS (", "SELECT $a$ $a", "E'\\", "U&\"", "/* /* */",
		"ALTER TABLE t RENAME", "ALTER TABLE t ALTER COLUMN", "CREATE TABLE t (", "DROP TABLE", "UPDATE",
		"BEGIN ATOMIC CASE END END;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		for _, scs := range []bool{true, false} {
			c := &checker{scs: scs, tables: map[string]*table{}, disabled: map[string]bool{}, rep: &Report{}}
			file := &sqlfile.File{Up: []sqlfile.Statement{{SQL: sql, Line: 1}}, Down: []sqlfile.Statement{{SQL: sql, Line: 2}}}
			fc := &fileCtx{in: Input{Name: "f.sql", Version: 1}, txs: map[int]*txInfo{}}
			up := c.section(fc, file.Up)
			fc.down, fc.downNew = true, map[string]bool{}
			down := c.section(fc, file.Down)
			c.hygiene(fc, file, up, down)
		}
	})
}
