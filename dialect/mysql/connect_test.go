package mysql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url                       string
		user, pass, addr, db, tls string
		timeout                   time.Duration
		loc                       string
	}{
		{url: "mysql://root@127.0.0.1/app", user: "root", addr: "127.0.0.1:3306", db: "app", loc: "UTC"},
		{url: "mysql://u%40x:p%3Aw%2F%40%23@db.example:3307/", user: "u@x", pass: "p:w/@#", addr: "db.example:3307"},
		{url: "mysql://u:p@[::1]:3306/d?tls=skip-verify&timeout=3s&loc=Local", user: "u", pass: "p", addr: "[::1]:3306", db: "d", tls: "skip-verify", timeout: 3 * time.Second, loc: "Local"},
		{url: "mysql://u@h/d?charset=utf8mb4&parseTime=false", user: "u", addr: "h:3306", db: "d"},
	} {
		cfg, err := mysql.ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if cfg.User != tc.user || cfg.Passwd != tc.pass || cfg.Addr != tc.addr || cfg.DBName != tc.db || cfg.Net != "tcp" ||
			cfg.TLSConfig != tc.tls || cfg.Timeout != tc.timeout || (tc.loc != "" && cfg.Loc.String() != tc.loc) {
			t.Errorf("ParseURL(%q) = user %q pass %q addr %q db %q tls %q timeout %s loc %s", tc.url,
				cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName, cfg.TLSConfig, cfg.Timeout, cfg.Loc)
		}
	}
	for _, sslmode := range []string{"sslmode=require", "ssl-mode=REQUIRED", "ssl_mode=VERIFY_IDENTITY"} {
		if _, err := mysql.ParseURL("mysql://u@h/d?" + sslmode); err == nil || !strings.Contains(err.Error(), "tls=true") {
			t.Errorf("ParseURL(...?%s): %v; want the hint to tls=", sslmode, err)
		}
	}
	for _, bad := range []string{
		"postgres://u@h/d",
		"mysql:///d",
		"mysql://u@h/d?sql_mode=ANSI",  // a session variable: the DSN form's
		"mysql://u@h/d?parsetime=true", // misspelt
		"mysql://u@h/d?timeout=soon",   // the driver's own check
		"mysql://u@h/a/b",
		"mysql://u:pa#ss@h/d",
	} {
		if _, err := mysql.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "pa#ss") || strings.Contains(err.Error(), "ss@h") {
			t.Errorf("ParseURL(%q): error shows the password: %v", bad, err)
		}
	}
}

func TestParseDSN(t *testing.T) {
	cfg, err := mysql.ParseDSN("u:p@w@tcp(h:3310)/d?sql_mode=ANSI&parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "u" || cfg.Passwd != "p@w" || cfg.Addr != "h:3310" || cfg.DBName != "d" || cfg.Params["sql_mode"] != "ANSI" {
		t.Errorf("ParseDSN = %+v", cfg)
	}
	if _, err := mysql.ParseDSN("u:p@tcp(h:3310"); err == nil {
		t.Error("ParseDSN accepted an unterminated address")
	}
}

// TestOpenForces: Open parses times, sends one statement per query and
// prepares on the server, whatever the configuration says; it sets a
// connect timeout and leaves cfg alone.
func TestOpenForces(t *testing.T) {
	ctx := context.Background()
	cfg, err := mysql.ParseURL(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime, cfg.MultiStatements, cfg.InterpolateParams = false, true, true
	db := mysql.Open(cfg)
	defer db.Close()
	if cfg.ParseTime || !cfg.MultiStatements || !cfg.InterpolateParams || cfg.Timeout != 0 {
		t.Errorf("Open changed its argument: %+v", cfg)
	}
	var now time.Time
	if err := db.QueryRowContext(ctx, "SELECT NOW(6)").Scan(&now); err != nil {
		t.Errorf("scan a DATETIME into time.Time: %v", err)
	}
	if _, err := db.ExecContext(ctx, "SELECT 1; SELECT 2"); err == nil {
		t.Error("two statements in one query ran: multiStatements is on")
	}
	// A prepared statement shows in the server's counter; interpolation
	// would send the text.
	var before, after int
	status := func() int {
		var name string
		var n int
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_stmt_prepare'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	db.SetMaxOpenConns(1)
	before = status()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT ?", 1).Scan(&one); err != nil {
		t.Fatal(err)
	}
	if after = status(); after != before+1 {
		t.Errorf("Com_stmt_prepare %d -> %d: arguments were interpolated", before, after)
	}
	// A refused configuration gives a handle that fails to connect.
	bad := gomysql.NewConfig()
	bad.TLSConfig = "no-such-config"
	db2 := mysql.Open(bad)
	defer db2.Close()
	if err := db2.PingContext(ctx); err == nil {
		t.Error("a handle for an invalid configuration connected")
	}
}
