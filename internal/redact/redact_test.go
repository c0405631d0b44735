package redact_test

import (
	"testing"

	"github.com/shiplock/shiplock/internal/redact"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// URLs.
		{"userinfo and query passwords",
			"postgres://user:secret@h/db?password=x&sslpassword=y",
			"postgres://user:xxxxx@h/db?password=xxxxx&sslpassword=xxxxx"},
		{"no password",
			"postgres://user@h:5432/db?sslmode=disable",
			"postgres://user@h:5432/db?sslmode=disable"},
		{"empty password", "postgres://u:@h/db", "postgres://u:@h/db"},
		{"percent-encoded password", "postgres://u:p%40ss@h/db", "postgres://u:xxxxx@h/db"},
		{"unencoded at sign", "postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db"},
		{"unencoded slash (base64)", "postgres://u:ab/cd+e==@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"unencoded slash after digits", "postgres://u:123/cd@h/db", "postgres://u:xxxxx@h/db"},
		{"unencoded question mark", "postgres://u:ab?cd@h/db", "postgres://u:xxxxx@h/db"},
		{"unencoded question mark after digits", "postgres://u:12?cd@h/db", "postgres://u:xxxxx@h/db"},
		{"unencoded hash", "postgres://u:ab#cd@h/db", "postgres://u:xxxxx@h/db"},
		{"at sign in a query value",
			"postgres://u:pw@h:5432/db?application_name=me@corp",
			"postgres://u:xxxxx@h:5432/db?application_name=me@corp"},
		{"at sign in a query value, no userinfo",
			"postgres://h:5432/db?application_name=me@corp",
			"postgres://h:5432/db?application_name=me@corp"},
		{"multiple hosts", "postgres://u:pw@h1:5432,h2:5433/db", "postgres://u:xxxxx@h1:5432,h2:5433/db"},
		{"postgresql scheme, odd case key",
			"postgresql://h/db?PassWord=x&sslmode=require",
			"postgresql://h/db?PassWord=xxxxx&sslmode=require"},
		{"percent-encoded key", "postgres://h/db?pass%77ord=x", "postgres://h/db?pass%77ord=xxxxx"},
		{"query password before fragment", "postgres://h/db?password=x#frag", "postgres://h/db?password=xxxxx#frag"},
		{"mysql URL", "mysql://root:pw@127.0.0.1:3306/db", "mysql://root:xxxxx@127.0.0.1:3306/db"},
		{"other scheme", "https://user:token@example.com/x", "https://user:xxxxx@example.com/x"},
		{"already redacted by pgx",
			"cannot parse `postgres://u:xxxxx@h/db`: invalid port",
			"cannot parse `postgres://u:xxxxx@h/db`: invalid port"},

		// URLs inside text.
		{"quoted in an error",
			`connect "postgres://u:pw@h/db?password=x": dial tcp 127.0.0.1:5432: connect: connection refused`,
			`connect "postgres://u:xxxxx@h/db?password=xxxxx": dial tcp 127.0.0.1:5432: connect: connection refused`},
		{"single quoted", "'postgres://u:pw@h/db?password=x' failed", "'postgres://u:xxxxx@h/db?password=xxxxx' failed"},
		{"two URLs", "from postgres://a:one@h/x to mysql://b:two@h/y",
			"from postgres://a:xxxxx@h/x to mysql://b:xxxxx@h/y"},

		// Keyword/value.
		{"libpq keywords",
			"host=h user=u password=secret dbname=d",
			"host=h user=u password=xxxxx dbname=d"},
		{"libpq quoted with escapes",
			`host=h password='se cret\'s' dbname=d`,
			`host=h password='xxxxx' dbname=d`},
		{"spaces around equals", "password = secret dbname=d", "password = xxxxx dbname=d"},
		{"sslpassword keyword", "sslkey=k sslpassword=s", "sslkey=k sslpassword=xxxxx"},
		{"environment variable", "PGPASSWORD=secret PGUSER=u", "PGPASSWORD=xxxxx PGUSER=u"},
		{"prefixed key", "db_password=secret", "db_password=xxxxx"},
		{"client secret", "client_secret=abc", "client_secret=xxxxx"},
		{"logfmt quoted",
			`level=INFO dsn="postgres://u:pw@h/db" password="a b" n=1`,
			`level=INFO dsn="postgres://u:xxxxx@h/db" password="xxxxx" n=1`},
		{"not a password key", "passfile=/home/u/.pgpass sslmode=disable", "passfile=/home/u/.pgpass sslmode=disable"},
		{"key inside a word is not a key", "xpassword=1", "xpassword=xxxxx"},
		{"empty keyword value", "user=u password=", "user=u password="},
		// libpq skips spaces after '=': the password here is "user=u".
		{"keyword value after spaces", "password= user=u", "password= xxxxx"},

		// JSON.
		{"json member", `{"password":"s3cr\"et","user":"u"}`, `{"password":"xxxxx","user":"u"}`},
		{"json member with spaces", `{"db_password": "x"}`, `{"db_password": "xxxxx"}`},

		// go-sql-driver/mysql DSNs.
		{"mysql dsn tcp",
			"root:secret@tcp(127.0.0.1:3306)/db?parseTime=true",
			"root:xxxxx@tcp(127.0.0.1:3306)/db?parseTime=true"},
		{"mysql dsn password with at sign", "root:p@ss@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"mysql dsn password with colon", "root:a:b@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"mysql dsn unix", "u:pw@unix(/run/mysqld/mysqld.sock)/db", "u:xxxxx@unix(/run/mysqld/mysqld.sock)/db"},
		{"mysql dsn default address", "u:pw@/db", "u:xxxxx@/db"},
		{"mysql dsn in an error", `open "u:pw@tcp(h)/db": refused`, `open "u:xxxxx@tcp(h)/db": refused`},
		{"mysql dsn password with @ and /", "root:p@ss/w0rd@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"mysql dsn password with @/", "root:a@/b@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"mysql dsn without a database", "root:pw@tcp(h:3306)", "root:xxxxx@tcp(h:3306)"},
		{"mysql dsn with an empty protocol", "root:pw@(h:3306)/db", "root:xxxxx@(h:3306)/db"},

		// SQL.
		{"create role password", "CREATE ROLE app LOGIN PASSWORD 'Sup3r';", "CREATE ROLE app LOGIN PASSWORD 'xxxxx';"},
		{"alter user encrypted password, doubled quote",
			"ALTER USER app WITH ENCRYPTED password\n  'it''s' VALID UNTIL 'infinity'",
			"ALTER USER app WITH ENCRYPTED password\n  'xxxxx' VALID UNTIL 'infinity'"},
		{"password null is not a literal", "ALTER ROLE app PASSWORD NULL", "ALTER ROLE app PASSWORD NULL"},
		{"mysql identified by", "CREATE USER 'app'@'%' IDENTIFIED BY 'S3cr@t';", "CREATE USER 'app'@'%' IDENTIFIED BY 'xxxxx';"},
		{"mysql identified with plugin by", "ALTER USER app IDENTIFIED WITH mysql_native_password BY 'S3cr''t'", "ALTER USER app IDENTIFIED WITH mysql_native_password BY 'xxxxx'"},
		{"mariadb using password()", "CREATE USER app IDENTIFIED VIA ed25519 USING PASSWORD('S3cr3t')", "CREATE USER app IDENTIFIED VIA ed25519 USING PASSWORD('xxxxx')"},
		{"mysql set password", "SET PASSWORD FOR 'app'@'%' = 'S3cr3t';", "SET PASSWORD FOR 'app'@'%' = 'xxxxx';"},
		{"server message", `password authentication failed for user "app"`, `password authentication failed for user "app"`},

		// Text with nothing to redact.
		{"plain error", "dial tcp 127.0.0.1:5432: connect: connection refused", "dial tcp 127.0.0.1:5432: connect: connection refused"},
		{"times and addresses", "at 10:30 user@example.com wrote 1:2", "at 10:30 user@example.com wrote 1:2"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redact.URL(tt.in)
			if got != tt.want {
				t.Errorf("URL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if again := redact.URL(got); again != got {
				t.Errorf("URL is not idempotent: URL(%q) = %q", got, again)
			}
		})
	}
}

func TestIsSecretKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"password", true},
		{"PGPASSWORD", true},
		{"sslpassword", true},
		{"password_hint", true},
		{"passwd", true},
		{"db_pwd", true},
		{"client_secret", true},
		{"ssh_passphrase", true},
		{"passfile", false},
		{"user", false},
		{"secretary", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := redact.IsSecretKey(tt.key); got != tt.want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
