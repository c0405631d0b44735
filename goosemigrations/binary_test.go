package goosemigrations_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
)

// TestBuiltBinary builds the README's ten-line main (testdata/myshiplock)
// and runs it as a container would: with only the *.sql files in the
// migrations directory (what an image built with -migrations holds), the
// Go migrations come from the binary, and the result is goose's. The
// binary keeps the kube subcommands.
func TestBuiltBinary(t *testing.T) {
	goose.SetLogger(goose.NopLogger())
	bin := filepath.Join(t.TempDir(), "myshiplock")
	build := exec.Command("go", "build", "-o", bin, "./testdata/myshiplock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sqlOnly := t.TempDir()
	sqls, err := filepath.Glob(filepath.Join(migrationsDir(t), "*.sql"))
	if err != nil || len(sqls) != 3 {
		t.Fatalf("SQL files: %v, %v", sqls, err)
	}
	for _, f := range sqls {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sqlOnly, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tg := targets[0] // sqlite
	_, refDSN := tg.newDB(t)
	if err := gooseUp(t, tg, refDSN, 0); err != nil {
		t.Fatal(err)
	}
	url, dsn := tg.newDB(t)
	cmd := exec.Command(bin, "--log-format", "text", "--database-url", url, "--dir", sqlOnly, "up")
	cmd.Env = append(os.Environ(), "SHIPLOCK_TEST_GO_FAIL=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("myshiplock up: %v\n%s", err, out)
	}
	same(t, "the built binary's up", tg.dump(t, refDSN), tg.dump(t, dsn))

	out, err := exec.Command(bin, "kube", "job", "--image", "registry.example/team/myshiplock:1", "--url-secret", "db:url", "--", "up").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "image: registry.example/team/myshiplock:1") {
		t.Fatalf("myshiplock kube job: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "kube", "--help").CombinedOutput()
	for _, sub := range []string{"inject", "job", "run"} {
		if err != nil || !strings.Contains(string(out), "\n  "+sub+" ") {
			t.Fatalf("myshiplock kube --help: %v; want the %s subcommand\n%s", err, sub, out)
		}
	}
}
