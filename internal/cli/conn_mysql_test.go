package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
)

// mysqlTarget resolves the database as a command would, from
// --database-url (with goose's DRIVER when driver is set) and env.
func mysqlTarget(t *testing.T, raw, driver string, env map[string]string) (target, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	g := &globals{databaseURL: raw, driver: driver, envFile: "none", streams: Streams{LookupEnv: lookup}}
	g.sec = g.newSecrets()
	if err := g.resolveSettings(); err != nil {
		return target{}, err
	}
	return g.resolveTarget()
}

// TestMySQLTargets: mysql:// URLs and go-sql-driver DSNs (recognised by
// their tcp(...) or unix(...) address, or read as MySQL by goose's DRIVER
// mysql) resolve to the MySQL dialect; MYSQL_PWD and MYSQL_USER fill what
// the string leaves out, never what it names; a string that cannot be
// parsed, or names no database, is a usage error that does not repeat its
// password.
func TestMySQLTargets(t *testing.T) {
	const pw = "Canary-My-7c1d"
	for _, tc := range []struct {
		name, raw, driver       string
		env                     map[string]string
		addr, user, pass, dbase string
		err                     string // part of the usage error, or ""
	}{
		{name: "url", raw: "mysql://app:" + pw + "@db.example:3307/accounts", addr: "db.example:3307", user: "app", pass: pw, dbase: "accounts"},
		{name: "mariadb url", raw: "mariadb://app@db.example/accounts", addr: "db.example:3306", user: "app", dbase: "accounts"},
		{name: "url default port", raw: "mysql://app@db.example/accounts", addr: "db.example:3306", user: "app", dbase: "accounts"},
		{name: "url encoded password", raw: "mysql://app:p%40ss%3Aw%2Fd@db.example/accounts", addr: "db.example:3306", user: "app", pass: "p@ss:w/d", dbase: "accounts"},
		{name: "dsn", raw: "app:" + pw + "@tcp(db.example:3306)/accounts", addr: "db.example:3306", user: "app", pass: pw, dbase: "accounts"},
		{name: "dsn password with @ and :", raw: "app:a@b:" + pw + "@tcp(db.example:3306)/accounts?parseTime=true", addr: "db.example:3306", user: "app", pass: "a@b:" + pw, dbase: "accounts"},
		{name: "dsn password with / and ://", raw: "app:a/b://c" + pw + "@tcp(db.example:3306)/accounts", addr: "db.example:3306", user: "app", pass: "a/b://c" + pw, dbase: "accounts"},
		{name: "dsn unix socket", raw: "app@unix(/run/mysqld/mysqld.sock)/accounts", addr: "/run/mysqld/mysqld.sock", user: "app", dbase: "accounts"},
		{name: "dsn by goose's driver", raw: "app:" + pw + "@/accounts", driver: "mysql", addr: "127.0.0.1:3306", user: "app", pass: pw, dbase: "accounts"},
		{name: "MYSQL_PWD fills the password", raw: "mysql://app@db.example/accounts", env: map[string]string{"MYSQL_PWD": pw}, addr: "db.example:3306", user: "app", pass: pw, dbase: "accounts"},
		{name: "the string's password wins over MYSQL_PWD", raw: "app:" + pw + "@tcp(db.example:3306)/accounts", env: map[string]string{"MYSQL_PWD": "other"}, addr: "db.example:3306", user: "app", pass: pw, dbase: "accounts"},
		{name: "MYSQL_USER fills the user", raw: "mysql://db.example/accounts", env: map[string]string{"MYSQL_USER": "app", "MYSQL_PWD": pw}, addr: "db.example:3306", user: "app", pass: pw, dbase: "accounts"},
		{name: "unencoded password in a url", raw: "mysql://app:p@ss" + pw + "@db.example/accounts", err: "must be percent-encoded"},
		{name: "bad dsn", raw: "app:" + pw + "@tcp(db.example:3306)", driver: "mysql", err: "parse the MySQL connection string"},
		{name: "url without a database", raw: "mysql://app:" + pw + "@db.example:3306/", err: "names no database"},
		{name: "dsn without a database", raw: "app:" + pw + "@tcp(db.example:3306)/?parseTime=true", err: "names no database"},
		{name: "unsubstituted host", raw: "mysql://app:" + pw + "@${DB_HOST}/accounts", err: "nothing substituted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := mysqlTarget(t, tc.raw, tc.driver, tc.env)
			if tc.err != "" {
				var usage *usageError
				if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want a usage error with %q", err, tc.err)
				}
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := tg.my
			if tg.dialect != "mysql" || c == nil {
				t.Fatalf("dialect %q, want mysql", tg.dialect)
			}
			if c.Addr != tc.addr || c.User != tc.user || c.Passwd != tc.pass || c.DBName != tc.dbase {
				t.Errorf("addr %q user %q password %q db %q; want %q %q %q %q", c.Addr, c.User, c.Passwd, c.DBName, tc.addr, tc.user, tc.pass, tc.dbase)
			}
		})
	}
}

// TestMySQLTLSFiles: goose's -certfile, -ssl-cert and -ssl-key become the
// MySQL connection's TLS configuration, verified against the CA file and
// the host's name, as goose registers them with the driver.
func TestMySQLTLSFiles(t *testing.T) {
	ca, cert, key := writeCert(t)
	g := &globals{databaseURL: "mysql://app@db.example:3306/accounts", envFile: "none"}
	g.sec = g.newSecrets()
	g.tls = tlsFiles{rootCert: ca, cert: cert, key: key}
	if err := g.resolveSettings(); err != nil {
		t.Fatal(err)
	}
	tg, err := g.resolveTarget()
	if err != nil {
		t.Fatal(err)
	}
	tc := tg.my.TLS
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "db.example" || tc.InsecureSkipVerify {
		t.Fatalf("TLS config %+v: want the CA pool, the client certificate and the server's name", tc)
	}
	code, _, stderr := runCLI(t, nil, "mysql", "app@tcp(db.example:3306)/accounts", "status", "-certfile", "/nonexistent/ca.pem")
	if code != int(exitcode.Usage) || !strings.Contains(stderr, "--certfile: no such file") {
		t.Errorf("-certfile /nonexistent: exit %d, %q; want exit 2 naming the file", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "mysql", "app@tcp(db.example:3306)/accounts", "status", "-ssl-cert", cert)
	if code != int(exitcode.Usage) || !strings.Contains(stderr, "go together") {
		t.Errorf("-ssl-cert alone: exit %d, %q; want exit 2", code, stderr)
	}
}

// TestEnvNamesMySQLPasswordSource: env says where a password (and a user)
// the URL does not hold comes from, without printing the password.
func TestEnvNamesMySQLPasswordSource(t *testing.T) {
	rows := envTable(t, map[string]string{"DATABASE_URL": "mysql://app@db/app", "MYSQL_PWD": "Canary-Pw-0b1e"}, "--env", "none")
	if rows["dbstring"] != "mysql://app@db/app DATABASE_URL (password from MYSQL_PWD)" || rows["driver"] != "mysql from the database setting" {
		t.Errorf("dbstring %q, driver %q", rows["dbstring"], rows["driver"])
	}
	// The user too, as a Job rendered by kube job --db-driver mysql sets it.
	rows = envTable(t, map[string]string{"DATABASE_URL": "mysql://db/app", "MYSQL_USER": "app", "MYSQL_PWD": "Canary-Pw-0b1e"}, "--env", "none")
	if rows["dbstring"] != "mysql://db/app DATABASE_URL (user from MYSQL_USER, password from MYSQL_PWD)" {
		t.Errorf("dbstring %q", rows["dbstring"])
	}
}
