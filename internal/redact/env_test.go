package redact_test

import (
	"testing"

	"github.com/shiplock/shiplock/internal/redact"
)

func TestIsSecretEnvName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"PGPASSWORD", true},
		{"APP_DB_PASSWORD", true},
		{"DB_PASSWD", true},
		{"DB_PASS", true},
		{"db_pwd", true},
		{"CLIENT_SECRET", true},
		{"GITHUB_TOKEN", true},
		{"AWS_CREDENTIALS", true},
		{"API_KEY", true},
		{"STRIPE_APIKEY", true},
		{"ENCRYPTION_KEY", true},
		{"PRIVATE_KEY_PEM", true},
		{"KEY", true},
		{"SSH_PASSPHRASE", true},
		{"KEY_COLUMN", false},
		{"MONKEY", false},
		{"BYPASS_CACHE", false},
		{"PWD", false},
		{"OLDPWD", false},
		{"SCHEMA", false},
		{"APP_USER", false},
		{"PGHOST", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := redact.IsSecretEnvName(tt.name); got != tt.want {
			t.Errorf("IsSecretEnvName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestURLPasswordNeedsEncoding(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"postgres://u:p@ss/w#rd@h/db", true},
		{"postgres://u:p@ss@h/db", true}, // pgx would take "ss@h" for the host
		{"postgres://u:ab/cd@h/db", true},
		{"postgres://u:ab?cd@h/db", true},
		{"postgres://u:ab#cd@h/db", true},
		{"postgres://u:100%@h/db", true},
		{"postgres://u:a b@h/db", true},
		{"postgres://u:p%2Fss%23w%40rd@h/db", false},
		{"postgres://u@h/db?application_name=me@corp", false},
		{"postgres://u:pw@h1:5432,h2:5433/db", false},
		{"postgres://h/db", false},
		{"host=h password=x", false},
	}
	for _, tt := range tests {
		if got := redact.URLPasswordNeedsEncoding(tt.url); got != tt.want {
			t.Errorf("URLPasswordNeedsEncoding(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
