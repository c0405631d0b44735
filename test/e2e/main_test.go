// Package e2e drives the built shiplock binary: script tests of its command
// line, many processes racing on one database, and kill -9 in the middle of
// a long run.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// shiplockBin is the binary under test, built once by TestMain.
var shiplockBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shiplock-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shiplockBin = filepath.Join(dir, "shiplock")
	build := exec.Command("go", "build", "-o", shiplockBin, "github.com/shiplock/shiplock/cmd/shiplock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build shiplock: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testdb.Main(m)
}

// writeMigrations writes files (name -> content) into a new directory.
func writeMigrations(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t testing.TB, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
