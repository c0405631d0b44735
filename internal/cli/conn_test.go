package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestCheckHosts(t *testing.T) {
	tests := []struct {
		conn string
		want string // "" means accepted, else part of the usage error
	}{
		{"host=db.internal port=5432", ""},
		{"host=::1 port=5432", ""},
		{"host=fe80::1%eth0 port=5432", ""},
		{"host=h1,h2 port=5432,5433", ""},
		{"host=/var/run/postgresql", ""},
		{"postgres://u@[::1]:5432/db", ""},
		{"postgres://u@h1:5432,h2:5433/db", ""},
		{"host=db.internal:5432", `"db.internal:5432" includes a port`},
		{"host=h1,db:6432 port=5432", `"db:6432" includes a port`},
		{"host=$HOST", "nothing substituted"},
		{"host=${DB_HOST}", "nothing substituted"},
		{"postgres://u@$DB_HOST/db", "nothing substituted"},
	}
	for _, tt := range tests {
		cfg, err := pgx.ParseConfig(tt.conn)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tt.conn, err)
			continue
		}
		err = checkHosts(cfg)
		var usage *usageError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", tt.conn, err)
		case tt.want != "" && (!errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want a usage error with %q", tt.conn, err, tt.want)
		}
	}
}
