package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// mysqlDiffFiles mix DDL (which MySQL commits around) and data, with a
// StatementBegin block, a NO TRANSACTION file and a semicolon inside a
// string; every file has a down.
var mysqlDiffFiles = map[string]string{
	"00001_users.sql": `-- +goose Up
CREATE TABLE users (id int AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL);
INSERT INTO users (email) VALUES ('a@example.com');
-- +goose Down
DROP TABLE users;
`,
	"00002_name.sql": `-- +goose Up
ALTER TABLE users ADD COLUMN name varchar(50), ADD INDEX users_email (email);
UPDATE users SET name = 'A';
-- +goose Down
ALTER TABLE users DROP INDEX users_email, DROP COLUMN name;
`,
	"00003_data.sql": `-- +goose Up
INSERT INTO users (email, name) VALUES ('b@example.com', 'B'), ('c;d@example.com', 'C');
-- +goose Down
DELETE FROM users WHERE email IN ('b@example.com', 'c;d@example.com');
`,
	"00004_orders.sql": `-- +goose Up
CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, user_id int NOT NULL, total decimal(10,2) NOT NULL,
  CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id));
-- +goose StatementBegin
CREATE TRIGGER orders_positive BEFORE INSERT ON orders FOR EACH ROW
BEGIN
  IF NEW.total < 0 THEN SET NEW.total = 0; END IF;
END;
-- +goose StatementEnd
INSERT INTO orders (user_id, total) SELECT id, -5 FROM users;
CREATE VIEW user_totals AS SELECT u.email, SUM(o.total) AS total FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.email;
-- +goose Down
DROP VIEW user_totals;
DROP TABLE orders;
`,
	"00005_index.sql": `-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX orders_total ON orders (total);
-- +goose Down
DROP INDEX orders_total ON orders;
`,
	"00006_rename.sql": `-- +goose Up
RENAME TABLE orders TO purchases;
INSERT INTO purchases (user_id, total) SELECT id, 7 FROM users WHERE email = 'a@example.com';
-- +goose Down
DELETE FROM purchases WHERE total = 7;
RENAME TABLE purchases TO orders;
`,
}

// gooseMySQL opens url for goose, as goose's CLI does (parseTime on).
func gooseMySQL(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// mysqlDump is SHOW CREATE TABLE (or VIEW, TRIGGER) of every table, view
// and trigger but shiplock's own table, and every table's rows, with the
// database's name and AUTO_INCREMENT counters cut (goose_db_version's
// rows are compared by versionRowsOn).
func mysqlDump(t testing.TB, db *sql.DB) string {
	t.Helper()
	var schema string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'shiplock_versions'
		UNION ALL SELECT TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 2, 1`)
	if err != nil {
		t.Fatal(err)
	}
	type object struct{ name, kind string }
	var objects []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.name, &o.kind); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, o)
	}
	rows.Close()
	var b strings.Builder
	for _, o := range objects {
		var (
			what = map[string]string{"BASE TABLE": "TABLE", "VIEW": "VIEW", "TRIGGER": "TRIGGER"}[o.kind]
			ddl  string
		)
		r, err := db.Query("SHOW CREATE " + what + " `" + o.name + "`")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		ddl = vals[1].String
		if what == "TRIGGER" {
			ddl = vals[2].String
		}
		fmt.Fprintf(&b, "%s\n", autoIncrement.ReplaceAllString(strings.ReplaceAll(ddl, "`"+schema+"`.", ""), ""))
		if what == "TABLE" && o.name != "goose_db_version" {
			fmt.Fprintf(&b, "rows: %s\n", myTableRows(t, db, o.name))
		}
	}
	return b.String()
}

// myTableRows is every row of table, in order.
func myTableRows(t testing.TB, db *sql.DB, table string) string {
	t.Helper()
	r, err := db.Query("SELECT * FROM `" + table + "` ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var row []string
		for _, v := range vals {
			row = append(row, v.String)
		}
		out = append(out, "("+strings.Join(row, ", ")+")")
	}
	return strings.Join(out, " ")
}

// TestGooseDifferentialMySQL: goose v3.30.0 (library, mysql dialect) and
// shiplock on the same directory of DDL and data files, on MariaDB: the
// same schema, rows and goose_db_version rows after up, when goose applies
// the first half and shiplock the rest and the reverse, and after down.
func TestGooseDifferentialMySQL(t *testing.T) {
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("mysql"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range mysqlDiffFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	migs, err := migrate.Load(os.DirFS(dir), ".", nil, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const half = 3
	type step struct {
		goose bool
		down  bool
		to    int64
	}
	run := func(t *testing.T, url string, s step) {
		t.Helper()
		var err error
		switch {
		case s.goose && s.down:
			err = goose.DownToContext(ctx, gooseMySQL(t, url), dir, s.to)
		case s.goose:
			err = goose.UpToContext(ctx, gooseMySQL(t, url), dir, s.to)
		case s.down:
			_, err = migrate.New(openMy(t, url), mysql.Dialect{}, migs, migrate.Options{}).Down(ctx, s.to)
		default:
			_, err = migrate.New(openMy(t, url), mysql.Dialect{}, migs, migrate.Options{}).Up(ctx, migrate.UpOptions{To: s.to})
		}
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
	}
	// Each scenario's states after its steps are compared with goose
	// alone's after the same steps.
	scenarios := map[string][]step{
		"shiplock up, down":               {{to: 6}, {down: true, to: half}, {down: true, to: 0}},
		"goose first half, shiplock rest": {{goose: true, to: half}, {to: 6}, {down: true, to: half}, {down: true, to: 0}},
		"shiplock first half, goose rest": {{to: half}, {goose: true, to: 6}, {goose: true, down: true, to: half}, {down: true, to: 0}},
	}
	gooseURL := testdb.MySQL(t)
	gdb := openMy(t, gooseURL)
	var want []string // goose alone: after up to half, up to 6, down to half, down to 0
	for _, s := range []step{{goose: true, to: half}, {goose: true, to: 6}, {goose: true, down: true, to: half}, {goose: true, down: true, to: 0}} {
		run(t, gooseURL, s)
		want = append(want, mysqlDump(t, gdb)+"versions: "+versionRowsOn(t, gdb))
	}
	t.Logf("goose alone, after up:\n%s", want[1])
	wantAfter := func(s step) string {
		switch {
		case !s.down && s.to == half:
			return want[0]
		case !s.down:
			return want[1]
		case s.to == half:
			return want[2]
		}
		return want[3]
	}
	for name, steps := range scenarios {
		t.Run(name, func(t *testing.T) {
			url := testdb.MySQL(t)
			db := openMy(t, url)
			for i, s := range steps {
				run(t, url, s)
				got := mysqlDump(t, db) + "versions: " + versionRowsOn(t, db)
				if w := wantAfter(s); got != w {
					t.Errorf("after step %d %+v:\n--- goose alone\n%s\n--- this scenario\n%s", i, s, w, got)
				}
			}
		})
	}
}
