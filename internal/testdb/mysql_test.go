package testdb

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"
)

func TestMySQLParallel(t *testing.T) {
	var names sync.Map
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(MySQL(t))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(u.Path, "/")
			if _, dup := names.LoadOrStore(name, true); dup {
				t.Fatalf("database name %s given twice", name)
			}
			cfg, err := mysql.ParseDSN(mysqlDSN(u))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DBName = name
			db, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var current string
			var tables int
			if err := db.QueryRowContext(t.Context(),
				"SELECT DATABASE(), (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE())",
			).Scan(&current, &tables); err != nil {
				t.Fatal(err)
			}
			if current != name || tables != 0 {
				t.Errorf("connected to %s with %d tables, want the empty %s", current, tables, name)
			}
			if _, err := db.ExecContext(t.Context(), "CREATE TABLE goose_db_version (id INT)"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSQLite(t *testing.T) {
	a, b := SQLite(t), SQLite(t)
	if a == b {
		t.Fatalf("two calls gave the same path %s", a)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Fatalf("%s exists already (%v)", a, err)
	}
	db, err := sql.Open("sqlite", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "CREATE TABLE goose_db_version (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
}
