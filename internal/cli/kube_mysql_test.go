//go:build !nokube

package cli

import (
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
)

// TestKubeJobMySQL: --db-driver mysql renders the location as
// DATABASE_URL and the Secret's user and password as MYSQL_USER and
// MYSQL_PWD (no libpq variables, PGREQUIREAUTH included); a mysql://
// --database-url says mysql by itself; a mesh lets 3306 through; libpq's
// settings and a password in the URL are usage errors.
func TestKubeJobMySQL(t *testing.T) {
	base := []string{"--env", "none", "kube", "job", "--image", "example.com/m", "--tag", "v1", "--mesh", "linkerd"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"host", []string{"--db-driver", "mysql", "--db-host", "mariadb.svc", "--db-name", "app", "--secret", "app-db"},
			[]string{"value: mysql://mariadb.svc/app", "name: MYSQL_USER", "name: MYSQL_PWD", "key: password", `skip-outbound-ports: "3306"`}},
		{"url", []string{"--database-url", "mysql://app@mariadb.svc:3307/app", "--secret", "app-db"},
			[]string{"value: mysql://app@mariadb.svc:3307/app", "name: MYSQL_PWD", `skip-outbound-ports: "3307"`}},
		{"dsn", []string{"--database-url", "app@tcp(mariadb.svc:3308)/app", "--secret", "app-db"},
			[]string{"value: app@tcp(mariadb.svc:3308)/app", "name: MYSQL_PWD", `skip-outbound-ports: "3308"`}},
		{"url secret", []string{"--db-driver", "mysql", "--url-secret", "app-db:url"},
			[]string{"name: DATABASE_URL", "key: url", `skip-outbound-ports: "3306"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, append(append(base, tc.args...), "--", "up")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in\n%s", w, out)
				}
			}
			if strings.Contains(out, "PG") {
				t.Errorf("libpq variables in a MySQL Job:\n%s", out)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--db-driver", "mysql", "--db-host", "h", "--db-name", "app", "--secret", "s", "--db-sslmode", "require"}, "--db-sslmode: is libpq's"},
		{[]string{"--db-driver", "mysql", "--db-host", "h", "--db-name", "app", "--secret", "s", "--db-require-auth", "md5"}, "--db-require-auth: is libpq's"},
		{[]string{"--db-driver", "mysql", "--db-host", "h", "--secret", "s"}, "--db-name: is required for MySQL"},
		{[]string{"--db-driver", "oracle", "--db-host", "h", "--secret", "s"}, "--db-driver: \"oracle\""},
		{[]string{"--database-url", "mysql://app:Canary-Pw@h/app"}, "only the password (as MYSQL_PWD)"},
		{[]string{"--database-url", "app:Canary-Pw@tcp(h:3306)/app"}, "only the password (as MYSQL_PWD)"},
	} {
		code, _, errOut := runCLI(t, nil, append(append(base, tc.args...), "--", "up")...)
		if code != int(exitcode.Usage) || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "Canary-Pw") {
			t.Errorf("%v: exit %d, %s; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
