package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestEffects: the statements whose effect Settle reads in the catalog,
// and those it leaves Unknown.
func TestEffects(t *testing.T) {
	for _, tc := range []struct {
		stmt string
		want string // the facts, "" when Unknown
	}{
		{"CREATE TABLE t (id int)", "+table .t"},
		{"create table if not exists `my db`.`t``x` (id int) ENGINE=InnoDB", "+table my db.t`x"},
		{"CREATE VIEW v AS SELECT 1", "+table .v"},
		{"CREATE ALGORITHM=MERGE DEFINER=`root`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1", "+table .v"},
		{"CREATE OR REPLACE VIEW v AS SELECT 1", ""},
		{"CREATE TEMPORARY TABLE t (id int)", ""},
		{"DROP TABLE a, `b`", "-table .a -table .b"},
		{"DROP VIEW IF EXISTS v", "-table .v"},
		{"CREATE UNIQUE INDEX i ON t (a)", "+index t.i"},
		{"CREATE INDEX i USING BTREE ON s.t (a)", "+index t.i"},
		{"DROP INDEX i ON t", "-index t.i"},
		{"RENAME TABLE a TO b, c TO d", "table .a>b table .c>d"},
		{"ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0, ADD INDEX t_c (c), ALGORITHM=INPLACE, LOCK=NONE", "+column t.c +index t.t_c"},
		{"ALTER TABLE t ADD c varchar(10) AFTER b", "+column t.c"},
		{"ALTER TABLE t DROP COLUMN c, DROP INDEX t_c, DROP PRIMARY KEY", "-column t.c -index t.t_c -index t.PRIMARY"},
		{"ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id)", "+constraint t.fk"},
		{"ALTER TABLE t ADD CONSTRAINT uq UNIQUE (a)", "+index t.uq"},
		{"ALTER TABLE t DROP FOREIGN KEY fk", "-constraint t.fk"},
		{"ALTER TABLE t RENAME COLUMN a TO b", "column t.a>b"},
		{"ALTER TABLE t RENAME INDEX a TO b", "index t.a>b"},
		{"ALTER TABLE t RENAME TO u", "table .t>u"},
		{"ALTER TABLE t CHANGE a b int", "column t.a>b"},
		{"ALTER TABLE t CHANGE a a bigint", ""},
		{"ALTER TABLE t MODIFY a bigint", ""},
		{"ALTER TABLE t ADD INDEX (a)", ""},
		{"ALTER TABLE t ADD COLUMN (a int, b int)", ""},
		{"ALTER TABLE t RENAME TO u, ADD COLUMN c int", ""},
		{"ALTER TABLE t ADD COLUMN c int COMMENT 'a, b; c'", "+column t.c"},
		{"ALTER TABLE t ADD COLUMN c int; DROP TABLE x", ""},
		{"ALTER TABLE t ADD COLUMN c int /*! , ADD COLUMN d int */", ""},
		{"INSERT INTO t VALUES (1)", ""},
		{"ALTER TABLE t ADD COLUMN c int -- trailing, comment\n# another\n", "+column t.c"},
	} {
		facts, ok := effects(tc.stmt)
		var got []string
		if ok {
			for _, f := range facts {
				got = append(got, f.String())
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("effects(%q) = %q, want %q", tc.stmt, g, tc.want)
		}
	}
}

func (f fact) String() string {
	where := f.schema + "." + f.name
	if f.kind != "table" {
		where = f.table + "." + f.name
	}
	if f.renamed != "" {
		return fmt.Sprintf("%s %s>%s", f.kind, where, f.renamed)
	}
	sign := "-"
	if f.present {
		sign = "+"
	}
	return sign + f.kind + " " + where
}

// TestSettleOnServer: Settle's outcome from MariaDB's information_schema
// for each readable form, before and after the statement ran, and busy
// while the marker's connection still runs something.
func TestSettleOnServer(t *testing.T) {
	ctx := context.Background()
	cfg, err := ParseURL(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	db := Open(cfg)
	defer db.Close()
	exec := func(stmts ...string) {
		t.Helper()
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	exec("CREATE TABLE base (id int PRIMARY KEY, a int, KEY base_a (a))", "CREATE TABLE ref (id int PRIMARY KEY)")
	settle := func(stmt string) dialect.Outcome {
		t.Helper()
		o, busy, err := Dialect{}.Settle(ctx, db, stmt, 0, time.Now())
		if err != nil || busy {
			t.Fatalf("Settle(%q) = %v, busy %v, %v", stmt, o, busy, err)
		}
		return o
	}
	for _, stmt := range []string{
		"CREATE TABLE t1 (id int)",
		"CREATE VIEW v1 AS SELECT 1 AS x",
		"CREATE INDEX base_id_a ON base (id, a)",
		"ALTER TABLE base ADD COLUMN b int, ADD UNIQUE KEY base_b (b)",
		"ALTER TABLE base ADD CONSTRAINT base_ref FOREIGN KEY (id) REFERENCES ref (id)",
		"ALTER TABLE base RENAME COLUMN b TO c",
		"ALTER TABLE base RENAME INDEX base_b TO base_c",
		"ALTER TABLE base DROP FOREIGN KEY base_ref",
		"ALTER TABLE base DROP COLUMN c, DROP INDEX base_a",
		"DROP INDEX base_id_a ON base",
		"RENAME TABLE t1 TO t2",
		"DROP VIEW v1",
		"DROP TABLE t2",
	} {
		if o := settle(stmt); o != dialect.NotDone {
			t.Errorf("before %q: %v, want not done", stmt, o)
		}
		exec(stmt)
		if o := settle(stmt); o != dialect.Done {
			t.Errorf("after %q: %v, want done", stmt, o)
		}
	}
	exec("ALTER TABLE base ADD COLUMN d int")
	for _, stmt := range []string{"ALTER TABLE base ADD COLUMN d int, ADD COLUMN e int", "ALTER TABLE base MODIFY d bigint", "INSERT INTO base VALUES (1, 1, 1)"} {
		if o := settle(stmt); o != dialect.Unknown {
			t.Errorf("%q: %v, want unknown (half there, or unreadable)", stmt, o)
		}
	}

	// A connection that runs something is busy; a server started after
	// the marker was written has not got it.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := conn.ExecContext(ctx, "DO SLEEP(30)"); done <- err }()
	for {
		_, busy, err := Dialect{}.Settle(ctx, db, "CREATE TABLE t1 (id int)", pid, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if busy {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling for the SLEEP to start
	}
	if _, busy, err := (Dialect{}).Settle(ctx, db, "CREATE TABLE t1 (id int)", pid, time.Unix(0, 0)); err != nil || busy {
		t.Errorf("a marker older than the server's start: busy %v, %v; want not busy", busy, err)
	}
	if _, err := db.Exec(fmt.Sprintf("KILL QUERY %d", pid)); err != nil {
		t.Fatal(err)
	}
	<-done
	if _, busy, err := (Dialect{}).Settle(ctx, db, "CREATE TABLE t1 (id int)", pid, time.Now()); err != nil || busy {
		t.Errorf("an idle connection: busy %v, %v; want not busy", busy, err)
	}
}
