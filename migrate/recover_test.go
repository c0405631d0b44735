package migrate

import "testing"

func TestStatementForms(t *testing.T) {
	for _, tc := range []struct {
		sql          string
		table, index string
		rerunnable   bool
	}{
		{sql: "CREATE INDEX CONCURRENTLY t_id ON t (id);", table: "t", index: "t_id"},
		{sql: "-- why\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"T id\" ON ONLY s.\"Tab\" USING btree (id);", table: `s."Tab"`, index: `"T id"`, rerunnable: true},
		{sql: "create index concurrently on t (id);"},
		{sql: "CREATE INDEX CONCURRENTLY a ON t (id); CREATE INDEX CONCURRENTLY b ON t (id);"},
		{sql: "CREATE TABLE IF NOT EXISTS z (id int);", rerunnable: true},
		{sql: "CREATE INDEX IF NOT EXISTS z_id ON z (id);", rerunnable: true},
		{sql: "DROP TABLE IF EXISTS z, y;", rerunnable: true},
		{sql: "DROP INDEX CONCURRENTLY IF EXISTS z_id;", rerunnable: true},
		{sql: "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;", rerunnable: true},
		{sql: "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' AFTER 'sad';", rerunnable: true},
		{sql: "ALTER TYPE mood ADD VALUE 'ok';"},
		{sql: "INSERT INTO t VALUES ('CREATE TABLE IF NOT EXISTS');"},
		{sql: "CREATE TABLE IF NOT EXISTS z (id int); INSERT INTO t VALUES (1);"},
		{sql: "CREATE TABLE t AS SELECT 'IF NOT EXISTS' AS x;"},
		{sql: "UPDATE t SET a = E'it\\'s; IF NOT EXISTS';"},
	} {
		table, index, ok := concurrentIndex(tc.sql)
		if ok != (tc.index != "") || table != tc.table || index != tc.index {
			t.Errorf("concurrentIndex(%q) = %q, %q, %v; want %q, %q", tc.sql, table, index, ok, tc.table, tc.index)
		}
		if got := rerunnable(tc.sql); got != tc.rerunnable {
			t.Errorf("rerunnable(%q) = %v, want %v", tc.sql, got, tc.rerunnable)
		}
	}
}
