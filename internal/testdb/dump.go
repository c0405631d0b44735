package testdb

import (
	"os/exec"
	"strings"
	"testing"
)

// PgDump returns what pg_dump prints for the database at url with args
// (--schema-only, --exclude-table=..., ...), without the \restrict and
// \unrestrict lines, whose key differs on every run: two databases with
// the same schema and data give the same text.
func PgDump(t testing.TB, url string, args ...string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", append(args, "--dbname", url)...).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, `\restrict`) && !strings.HasPrefix(line, `\unrestrict`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
