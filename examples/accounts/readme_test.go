package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestREADMEWalkthrough runs the README's accounts walkthrough, typed in
// order as written: only the database's port and name and the app's port
// are replaced, so that it runs beside other tests.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds shiplock and the app")
	}
	srv := testdb.PostgresServer(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "### The accounts example\n")
	if i < 0 {
		t.Fatal(`README.md has no "### The accounts example" section`)
	}
	section = section[i:]
	start := strings.Index(section, "```sh\n")
	if start < 0 {
		t.Fatal("the section has no sh block")
	}
	script := section[start+len("```sh\n"):]
	script = script[:strings.Index(script, "```")]

	db := fmt.Sprintf("walkthrough_%d", time.Now().UnixNano())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appPort := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	pgPort := fmt.Sprint(srv.Port)
	for _, r := range [][2]string{
		{"-U postgres accounts", "-p " + pgPort + " -U postgres " + db},
		{"@127.0.0.1:5432/accounts?", "@127.0.0.1:" + pgPort + "/" + db + "?"},
		{"PGDBNAME=accounts", "PGPORT=" + pgPort + " PGDBNAME=" + db},
		{"PORT_NUM=8080", "PORT_NUM=" + appPort},
		{"localhost:8080", "localhost:" + appPort},
	} {
		if !strings.Contains(script, r[0]) {
			t.Fatalf("the walkthrough no longer has %q: update this test", r[0])
		}
		script = strings.ReplaceAll(script, r[0], r[1])
	}
	admin, err := postgres.Open(srv.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// set -e stops at the first failing command; the trap stops the app
	// when a later command fails.
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"+script)
	cmd.Dir = "../.."
	env := append(os.Environ(), "TMPDIR="+t.TempDir())
	if u, err := url.Parse(srv.AdminURL); err == nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw) // the README's server trusts local users
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\n--- script ---\n%s", err, out, script)
	}
	for _, want := range []string{"applied 6 migrations, now at version 20261106090000 (was 0)", `"email":"ada@example.com"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join("../..", "accounts-v1")); err == nil {
		t.Error("the walkthrough left a binary in the repository")
	}
}
