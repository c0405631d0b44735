package mysql

import (
	"fmt"
	"strings"
	"testing"
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
