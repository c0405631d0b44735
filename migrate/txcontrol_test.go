package migrate

import "testing"

func TestIsTxControl(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"BEGIN;", true},
		{"begin transaction isolation level serializable;", true},
		{"START TRANSACTION;", true},
		{"COMMIT;", true},
		{"commit", true},
		{"End;", true},
		{"ROLLBACK;", true},
		{"ROLLBACK TO SAVEPOINT a;", true},
		{"abort;", true},
		{"SAVEPOINT a;", true},
		{"RELEASE SAVEPOINT a;", true},
		{"PREPARE TRANSACTION 'x';", true},
		{"COMMIT PREPARED 'x';", true},
		{"  -- leading comment\n/* block /* nested */ still */ COMMIT;", true},
		{"CREATE TABLE a (x int); COMMIT; CREATE INDEX CONCURRENTLY i ON a (x);", true},
		{"SELECT 1;END", true},
		// Not transaction control.
		{"PREPARE q AS SELECT 1;", false},
		{"CREATE TABLE begin_log (id int);", false},
		{"INSERT INTO t VALUES ('; COMMIT;');", false},
		{"INSERT INTO t VALUES ('it''s; commit');", false},
		{"SELECT \"; commit\" FROM t;", false},
		{"SELECT 1; -- ; COMMIT\nSELECT 2;", false},
		{"SELECT 1 /* ; COMMIT */;", false},
		{"CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; END; $$ LANGUAGE plpgsql;", false},
		{"CREATE FUNCTION f() RETURNS void AS $body$ BEGIN x := '$$'; END; $body$ LANGUAGE plpgsql;", false},
		{"DO $$ BEGIN RAISE NOTICE 'x'; END $$;", false},
		{"DO $x$ DECLARE a int; BEGIN a := 1; END $x$;", false},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;", false},
		{"SELECT $1, a$b FROM t;", false},
		{"ALTER TABLE t ADD COLUMN ended_at timestamptz;", false},
		// A backslash before a quote: under standard_conforming_strings
		// = off the string goes on, so COMMIT is inside it; under on it is
		// a statement. Either reading counts.
		{`INSERT INTO t VALUES ('a\'); COMMIT; --');`, true},
		{`INSERT INTO t VALUES (E'a\'; COMMIT; --');`, false},
		{"SELECT 'unterminated; COMMIT", false},
	} {
		if got := isTxControl(tc.sql); got != tc.want {
			t.Errorf("isTxControl(%q) = %v, want %v", tc.sql, got, tc.want)
		}
	}
}
