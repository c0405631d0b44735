package mysql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

// implicitCases: what ImplicitCommit says of each statement. live marks the
// statements the empirical test runs on the server (in a database holding
// tables t and u, user variables free): those said not to commit must
// leave a transaction rollbackable, those said to commit must commit it.
var implicitCases = []struct {
	stmt    string
	commits bool
	live    bool
}{
	// Data statements.
	{"SELECT 1", false, true},
	{"select * from t", false, true},
	{"SELECT n FROM t FOR UPDATE", false, true},
	{"(SELECT 1) UNION (SELECT 2)", false, true},
	{"((SELECT 1))", false, true},
	{"WITH a AS (SELECT 1 AS n) SELECT * FROM a", false, true},
	{"WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", false, true},
	{"INSERT INTO t VALUES (2)", false, true},
	{"INSERT INTO t SELECT n + 100 FROM t", false, true},
	{"INSERT INTO t VALUES (3) ON DUPLICATE KEY UPDATE n = n", false, true},
	{"INSERT IGNORE INTO t VALUES (4)", false, true},
	{"UPDATE t SET n = n + 0", false, true},
	{"DELETE FROM t WHERE n = 99", false, true},
	{"REPLACE INTO t VALUES (5)", false, true},
	{"DO 1", false, true},
	{"DO SLEEP(0)", false, true},
	{"VALUES (1), (2)", false, true},
	{"SHOW TABLES", false, true},
	{"SHOW CREATE TABLE t", false, true},
	{"EXPLAIN SELECT * FROM t", false, true},
	{"DESCRIBE t", false, true},
	{"DESC t", false, true},
	{"SAVEPOINT sp", false, true},
	{"RELEASE SAVEPOINT sp", false, false},
	{"ROLLBACK TO SAVEPOINT sp", false, false},
	{"ROLLBACK WORK TO sp", false, false},
	{"SET @x = 1", false, true},
	{"SET @x := (SELECT COUNT(*) FROM t), @y = 'a,b'", false, true},
	{"SET @`odd` = 1", false, true},
	{"SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", false, true},
	{"SET foreign_key_checks = 0", false, true},
	{"SET @@session.unique_checks = 1, @z = CONCAT('x', 'y')", false, true},
	{"SET LOCAL sql_safe_updates = 0", false, true},
	{"SET NAMES utf8mb4", false, true},
	{"SET CHARACTER SET utf8mb4", false, true},
	{"SET STATEMENT max_statement_time = 10 FOR SELECT 1", false, true},
	{"SET STATEMENT max_statement_time = 10 FOR INSERT INTO t VALUES (6)", false, true},
	{"SET autocommit = 0", true, false}, // does not commit when already 0; counted as committing
	// Comments and versioned comments.
	{"-- a comment\nINSERT INTO t VALUES (7)", false, true},
	{"# a comment\nSELECT 1", false, true},
	{"/* a comment */ SELECT 1", false, true},
	{"/* multi\nline; CREATE TABLE x (n int) */\n\tUPDATE t SET n = n", false, true},
	{"/*!40101 SET @old = @@sql_mode */", false, true},
	{"/*M!100100 SET @m = 1 */", false, true},
	{"/*!50001 CREATE TABLE v1 (n int) */", true, true},
	{"SELECT 1 /*!, 2 */", false, true},
	{"SELECT '-- ; CREATE TABLE x' AS s", false, true},
	{"SELECT \"it''s\", 'a\\'b; DROP TABLE t'", false, true},
	{"SELECT 1--1", false, true},
	{"", false, false},
	{"-- only a comment", false, false},
	{"  \n\t", false, false},
	// Several statements in one text: any committing one counts.
	{"INSERT INTO t VALUES (8); INSERT INTO t VALUES (9);", false, false},
	{"INSERT INTO t VALUES (8); CREATE TABLE x (n int)", true, false},
	// DDL.
	{"CREATE TABLE c1 (n int)", true, true},
	{"create table if not exists c2 (n int)", true, true},
	{"CREATE TABLE c3 AS SELECT * FROM t", true, true},
	{"CREATE TEMPORARY TABLE tmp1 (n int)", false, true},
	{"create or replace temporary table tmp2 AS SELECT * FROM t", false, true},
	{"/*!40000 CREATE TEMPORARY TABLE tmp3 (n int) */", false, true},
	{"DROP TEMPORARY TABLE IF EXISTS tmp1", false, true},
	{"CREATE TABLE temporary (n int)", true, true},
	{"DROP TABLE IF EXISTS temporary", true, true},
	{"ALTER TABLE u ADD COLUMN m int", true, true},
	{"ALTER TABLE u ADD INDEX (n)", true, true},
	{"CREATE INDEX i1 ON u (n)", true, true},
	{"CREATE UNIQUE INDEX i2 ON u (n)", true, true},
	{"DROP TABLE IF EXISTS missing", true, true},
	{"RENAME TABLE u TO u2", true, true},
	{"TRUNCATE TABLE u", true, true},
	{"TRUNCATE u", true, true},
	{"CREATE VIEW v2 AS SELECT * FROM t", true, true},
	{"CREATE OR REPLACE VIEW v3 AS SELECT 1", true, true},
	{"DROP VIEW IF EXISTS v4", true, true},
	{"CREATE DATABASE IF NOT EXISTS x", true, false},
	{"CREATE SEQUENCE s1", true, true},
	{"CREATE PROCEDURE p1() BEGIN SELECT 1; END", true, true},
	{"CREATE FUNCTION f1() RETURNS int DETERMINISTIC RETURN 1", true, true},
	{"CREATE TRIGGER tr1 BEFORE INSERT ON u FOR EACH ROW SET NEW.n = NEW.n", true, true},
	{"CREATE EVENT e1 ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 DAY DO SELECT 1", true, true},
	{"/* leading */ ALTER TABLE u COMMENT 'x'", true, true},
	{"(CREATE TABLE x (n int))", true, false},
	// Accounts and privileges.
	{"GRANT SELECT ON *.* TO nobody", true, false},
	{"REVOKE SELECT ON *.* FROM nobody", true, false},
	{"CREATE USER nobody", true, false},
	{"DROP USER nobody", true, false},
	{"ALTER USER nobody ACCOUNT LOCK", true, false},
	{"RENAME USER a TO b", true, false},
	{"SET PASSWORD = PASSWORD('x')", true, false},
	{"SET PASSWORD FOR nobody = 'x'", true, false},
	{"SET DEFAULT ROLE r FOR nobody", true, false},
	{"SET ROLE NONE", true, false},
	// Transaction control and locking.
	{"BEGIN", true, true},
	{"BEGIN WORK", true, true},
	{"START TRANSACTION", true, true},
	{"start transaction read only", true, true},
	{"COMMIT", true, true},
	{"ROLLBACK", true, false},
	// SET autocommit = 1 commits only when autocommit was 0 (START
	// TRANSACTION leaves it 1).
	{"SET autocommit = 1", true, false},
	{"SET @@autocommit = 1", true, false},
	{"SET SESSION autocommit := 1", true, false},
	{"SET @a = 1, @@session.autocommit = 1", true, false},
	{"SET `autocommit` = 1", true, false},
	{"LOCK TABLES t WRITE", true, true},
	{"LOCK TABLE t READ", true, true},
	{"UNLOCK TABLES", true, false}, // commits only while tables are locked
	{"XA START 'x'", true, false},
	// Administration.
	{"ANALYZE TABLE t", true, true},
	{"ANALYZE SELECT 1", true, false},
	{"OPTIMIZE TABLE t", true, true},
	{"REPAIR TABLE t", true, true},
	{"CHECK TABLE t", true, true},
	{"CHECKSUM TABLE t", true, false},
	{"FLUSH TABLES", true, true},
	{"FLUSH PRIVILEGES", true, true},
	{"RESET QUERY CACHE", true, false},
	{"CACHE INDEX t IN default", true, false},
	{"LOAD INDEX INTO CACHE t", true, false},
	{"LOAD DATA INFILE '/nonexistent' INTO TABLE t", true, false},
	{"INSTALL SONAME 'x'", true, false},
	{"START SLAVE", true, false},
	{"CHANGE MASTER TO master_host = 'x'", true, false},
	// Unknown or unreadable.
	{"CALL p()", true, false},
	{"EXECUTE s", true, false},
	{"PREPARE s FROM 'SELECT 1'", true, false},
	{"HANDLER t OPEN", true, false},
	{"KILL 1", true, false},
	{"label: BEGIN NOT ATOMIC SELECT 1; END", true, false},
	{"BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END", true, false},
	{"SELECT 'unterminated", true, false},
	{"SELECT `unterminated", true, false},
	{"/* unterminated SELECT 1", true, false},
	{"@x", true, false},
	{";;; CREATE TABLE x (n int)", true, false},
}

func TestImplicitCommit(t *testing.T) {
	var d mysql.Dialect
	for _, c := range implicitCases {
		if got := d.ImplicitCommit(c.stmt); got != c.commits {
			t.Errorf("ImplicitCommit(%q) = %v, want %v", c.stmt, got, c.commits)
		}
	}
}

// TestImplicitCommitLive checks the table on the server: START
// TRANSACTION, INSERT a marker row, the statement, ROLLBACK. A statement
// said not to commit leaves no marker; one said to commit leaves it.
func TestImplicitCommitLive(t *testing.T) {
	ctx := context.Background()
	var d mysql.Dialect
	url := testdb.MySQL(t)
	db := open(t, url)
	n := 0
	for _, c := range implicitCases {
		if !c.live {
			continue
		}
		n++
		t.Run(strings.Fields(c.stmt + " _")[0], func(t *testing.T) {
			// The same tables for every case: what a DDL case made or
			// renamed is dropped first.
			if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS t, u, u2, marker, c1, c2, c3, v1, tmp1"); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"DROP VIEW IF EXISTS v2, v3", "DROP SEQUENCE IF EXISTS s1", "DROP PROCEDURE IF EXISTS p1",
				"DROP FUNCTION IF EXISTS f1", "DROP EVENT IF EXISTS e1", "DROP INDEX IF EXISTS i1 ON t",
				"CREATE TABLE t (n int PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO t VALUES (1)",
				"CREATE TABLE u (n int) ENGINE=InnoDB", "CREATE TABLE marker (n int) ENGINE=InnoDB"} {
				if _, err := db.ExecContext(ctx, q); err != nil && !strings.HasPrefix(q, "DROP INDEX") {
					t.Fatalf("%s: %v", q, err)
				}
			}
			c2 := pin(t, db)
			for _, q := range []string{"START TRANSACTION", "INSERT INTO marker VALUES (1)", c.stmt} {
				if _, err := c2.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := c2.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			_, _ = c2.ExecContext(ctx, "UNLOCK TABLES")
			var rows int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM marker").Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if committed := rows == 1; committed != c.commits {
				t.Errorf("%q: committed the transaction: %v; ImplicitCommit says %v", c.stmt, committed, d.ImplicitCommit(c.stmt))
			}
		})
	}
	if n < 75 {
		t.Fatalf("only %d statements checked live", n)
	}
	// SET autocommit = 1 commits a transaction opened by autocommit = 0.
	c := pin(t, db)
	for _, q := range []string{"DELETE FROM marker", "SET autocommit = 0", "INSERT INTO marker VALUES (2)", "SET @@session.autocommit = 1", "ROLLBACK"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if rows := queryString(t, db, "SELECT COUNT(*) FROM marker"); rows != "1" {
		t.Errorf("SET @@session.autocommit = 1 after autocommit = 0: %s marker rows, want 1 (committed)", rows)
	}
}

// FuzzImplicitCommit: ImplicitCommit never panics; a leading comment
// changes nothing; and a committing statement after the text (its own line,
// after a semicolon) makes the text committing whatever the text holds.
func FuzzImplicitCommit(f *testing.F) {
	for _, c := range implicitCases {
		f.Add(c.stmt)
	}
	var d mysql.Dialect
	f.Fuzz(func(t *testing.T, s string) {
		got := d.ImplicitCommit(s)
		if with := d.ImplicitCommit("/* c */ " + s); with != got {
			t.Errorf("ImplicitCommit(%q) = %v, with a leading comment %v", s, got, with)
		}
		if !d.ImplicitCommit(s + "\n;CREATE TABLE x (n int)") {
			t.Errorf("ImplicitCommit(%q + a CREATE TABLE) = false", s)
		}
	})
}

// TestStepConflict: LOCK TABLES, however written, cannot run between
// progress records; nothing else is refused.
func TestStepConflict(t *testing.T) {
	var d mysql.Dialect
	for stmt, refused := range map[string]bool{
		"LOCK TABLES t WRITE":                           true,
		"lock table t read":                             true,
		"/* dump */ LOCK TABLES `t` WRITE, u READ":      true,
		"/*!40000 LOCK TABLES t WRITE */":               true,
		"INSERT INTO t VALUES (1); LOCK TABLES t WRITE": true,
		"UNLOCK TABLES":                                 false,
		"SELECT 'LOCK TABLES t WRITE'":                  false,
		"CREATE TABLE lock_tables (id int)":             false,
		"LOCK INSTANCE FOR BACKUP":                      false,
	} {
		if got := d.StepConflict(stmt) != ""; got != refused {
			t.Errorf("StepConflict(%q) refuses = %v, want %v", stmt, got, refused)
		}
	}
}
