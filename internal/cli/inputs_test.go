package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/mesh"
)

// runCLI runs shiplock in-process with env and returns its exit code, stdout
// and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Main(context.Background(), append([]string{"--log-format", "text"}, args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errb, LookupEnv: lookup})
	return code, out.String(), errb.String()
}

// TestVersionsAreDecimal: "--to 00012" is version 12, not octal 10, and
// "00019" is 19, not a usage error, on every flag that takes a version.
func TestVersionsAreDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"00012", 12, false},
		{"00019", 19, false},
		{"0", 0, false},
		{"20261126120000", 20261126120000, false},
		{"0x10", 0, true},
		{"-1", 0, true},
		{"1e3", 0, true},
	} {
		var v int64
		err := newVersionValue(&v).Set(tc.in)
		if tc.bad != (err != nil) || v != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d (error %v)", tc.in, v, err, tc.want, tc.bad)
		}
	}
	// Through the commands: a bad version is a usage error before any
	// database is touched; a good one gets past flag parsing.
	for _, args := range [][]string{
		{"up", "--to"}, {"down", "--to"}, {"plan", "--to"}, {"await", "--version"}, {"check", "--version"},
	} {
		code, _, stderr := runCLI(t, nil, append(args, "0x12", "--database-url", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))...)
		if code != int(exitcode.Usage) || !strings.Contains(stderr, "0x12") {
			t.Errorf("%v 0x12: exit %d, %q; want exit 2 naming the version", args, code, stderr)
		}
	}
	cmd := newUpCmd(&globals{})
	if err := cmd.ParseFlags([]string{"--to", "00012"}); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("to").Value.String(); got != "12" {
		t.Errorf("up --to 00012 = %s, want 12", got)
	}
	dcmd := newDownCmd(&globals{})
	if err := dcmd.ParseFlags([]string{"--to", "00019"}); err != nil {
		t.Fatalf("down --to 00019: %v", err)
	}
	if got := dcmd.Flags().Lookup("to").Value.String(); got != "19" {
		t.Errorf("down --to 00019 = %s, want 19", got)
	}
}

// TestMissingOrEmptyDir: a wrong --dir fails with exit 3 naming it,
// instead of "nothing to do"; --allow-empty accepts an empty directory.
func TestMissingOrEmptyDir(t *testing.T) {
	tmp := t.TempDir()
	db := "sqlite://" + filepath.Join(tmp, "x.db")
	missing := filepath.Join(tmp, "missing")
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(empty, "README.md"), []byte("docs"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"up"}, {"down"}, {"redo"}, {"status"}, {"validate"}, {"plan"}, {"verify"}, {"check"}, {"await", "--timeout", "1s"}} {
		code, _, stderr := runCLI(t, nil, append(cmd, "--dir", missing, "--database-url", db)...)
		if code != int(exitcode.BadFile) || !strings.Contains(stderr, missing+": migrations directory does not exist") {
			t.Errorf("%v --dir missing: exit %d, %q; want 3 naming the directory", cmd, code, stderr)
		}
		code, _, stderr = runCLI(t, nil, append(cmd, "--dir", empty, "--database-url", db)...)
		if code != int(exitcode.BadFile) || !strings.Contains(stderr, empty+": no migration files") {
			t.Errorf("%v --dir empty: exit %d, %q; want 3 naming the directory", cmd, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, map[string]string{"SHIPLOCK_DIR": empty}, "up", "--database-url", db)
	if code != int(exitcode.BadFile) || !strings.Contains(stderr, "--allow-empty") {
		t.Errorf("up with SHIPLOCK_DIR empty: exit %d, %q; want 3 suggesting --allow-empty", code, stderr)
	}
	for _, cmd := range [][]string{{"up"}, {"validate"}, {"status"}, {"check"}} {
		if code, out, stderr := runCLI(t, nil, append(cmd, "--allow-empty", "--dir", empty, "--database-url", db)...); code != int(exitcode.OK) {
			t.Errorf("%v --allow-empty: exit %d\n%s%s", cmd, code, out, stderr)
		}
	}
	if code, _, stderr := runCLI(t, nil, "up", "--allow-empty", "--dir", missing, "--database-url", db); code != int(exitcode.BadFile) {
		t.Errorf("up --allow-empty with a missing directory: exit %d, %q; want 3", code, stderr)
	}
}

// TestCreateTwiceInOneSecond: two creates in the same second make two
// versions, and the directory stays valid.
func TestCreateTwiceInOneSecond(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	g := &globals{dir: dir, streams: Streams{Out: &bytes.Buffer{}}}
	now := time.Date(2026, 11, 28, 23, 0, 0, 500, time.UTC)
	f := &createFlags{}
	for _, name := range []string{"a", "b", "c"} {
		if err := f.run(g, name, "sql", now); err != nil {
			t.Fatal(err)
		}
	}
	names := dirNames(t, dir)
	want := []string{"20261128230000_a.sql", "20261128230001_b.sql", "20261128230002_c.sql"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", names, want)
	}
	// The clock going back (or a file from a machine ahead) still makes
	// the new file sort last.
	if err := f.run(g, "d", "sql", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); names[len(names)-1] != "20261128230003_d.sql" {
		t.Fatalf("files %v, want 20261128230003_d.sql last", names)
	}
	if code, out, stderr := runCLI(t, nil, "validate", "--dir", dir); code != int(exitcode.OK) {
		t.Fatalf("validate: exit %d\n%s%s", code, out, stderr)
	}
	// Through the command, with the real clock.
	dir2 := filepath.Join(t.TempDir(), "m")
	for _, name := range []string{"x", "y"} {
		if code, _, stderr := runCLI(t, nil, "create", name, "--dir", dir2); code != int(exitcode.OK) {
			t.Fatalf("create %s: exit %d, %s", name, code, stderr)
		}
	}
	if code, out, stderr := runCLI(t, nil, "validate", "--dir", dir2); code != int(exitcode.OK) || !strings.Contains(out, "2 migrations") {
		t.Fatalf("validate after two creates: exit %d\n%s%s", code, out, stderr)
	}
}

// TestCreateConcurrently: creates racing in one second (several
// developers' scripts, a generator) still end with distinct versions.
func TestCreateConcurrently(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	now := time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &globals{dir: dir, streams: Streams{Out: &bytes.Buffer{}}}
			errs[i] = (&createFlags{}).run(g, fmt.Sprintf("m%d", i), "sql", now)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	names := dirNames(t, dir)
	seen := map[string]string{}
	for _, n := range names {
		v, _, _ := strings.Cut(n, "_")
		if prev, dup := seen[v]; dup {
			t.Fatalf("%s and %s share a version: %v", prev, n, names)
		}
		seen[v] = n
	}
	if len(names) != len(errs) {
		t.Fatalf("%d files, want %d: %v", len(names), len(errs), names)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestWaitProxyWithoutProxy: --wait-proxy linkerd in a pod with no proxy
// ends within --wait-proxy-timeout, exit 2, saying what is missing.
func TestWaitProxyWithoutProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	_, err = mesh.WaitReady(context.Background(), mesh.Linkerd, mesh.Config{LinkerdAdmin: closed, ReadyTimeout: 200 * time.Millisecond})
	err = proxyWaitError(err)
	if code := classify(err, nil, false); code != exitcode.Usage || !strings.Contains(err.Error(), "no linkerd proxy listening") || !strings.Contains(err.Error(), "--wait-proxy") {
		t.Fatalf("exit %d, %v; want exit 2 saying no proxy listens", code, err)
	}
	// A proxy that listens but never gets ready is worth retrying.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not ready", 503) }))
	defer srv.Close()
	_, err = mesh.WaitReady(context.Background(), mesh.Linkerd, mesh.Config{LinkerdAdmin: srv.URL, ReadyTimeout: 200 * time.Millisecond})
	if code := classify(proxyWaitError(err), nil, false); code != exitcode.Unavailable {
		t.Fatalf("proxy never ready: exit %d (%v), want 6", code, err)
	}
	// The flag exists on the commands a Job runs, with a bound by default.
	for _, cmd := range []*cobra.Command{newUpCmd(&globals{}), newDownCmd(&globals{}), newRepairCmd(&globals{})} {
		fl := cmd.Flags().Lookup("wait-proxy-timeout")
		if fl == nil || fl.DefValue != mesh.DefaultReadyTimeout.String() {
			t.Errorf("%s: --wait-proxy-timeout = %+v", cmd.Name(), fl)
		}
	}
}
