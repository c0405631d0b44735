package testdb

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// fakeTB records how a helper ended a test. Skip and Fatal end the calling
// goroutine, as the real ones do; run calls f in its own goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) run(fn func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestReport(t *testing.T) {
	unavailable := &unavailableError{"testdb: no PostgreSQL server: set " + EnvPostgresURL}
	broken := errors.New("testdb: connection refused")
	tests := []struct {
		name     string
		err      error
		getenv   func(string) string
		wantSkip bool
	}{
		{"no server skips", unavailable, env(), true},
		{"no server with REQUIRE=1 fails", unavailable, env(EnvRequireDB, "1"), false},
		{"no server with REQUIRE=true fails", unavailable, env(EnvRequireDB, "true"), false},
		{"no server with REQUIRE=yes fails", unavailable, env(EnvRequireDB, "yes"), false},
		{"no server with REQUIRE=0 skips", unavailable, env(EnvRequireDB, "0"), true},
		{"no server with REQUIRE=false skips", unavailable, env(EnvRequireDB, "False"), true},
		{"no server with REQUIRE=no skips", unavailable, env(EnvRequireDB, "no"), true},
		{"unparseable REQUIRE fails", unavailable, env(EnvRequireDB, "yes please"), false},
		{"wrapped unavailable skips", fmt.Errorf("x: %w", unavailable), env(), true},
		{"broken server fails", broken, env(), false},
		{"broken server fails with REQUIRE", broken, env(EnvRequireDB, "1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{}
			f.run(func(tb testing.TB) { report(tb, tt.getenv, tt.err) })
			if f.skipped != tt.wantSkip || f.failed == tt.wantSkip {
				t.Fatalf("skipped=%v failed=%v, want skip=%v", f.skipped, f.failed, tt.wantSkip)
			}
			if !strings.Contains(f.msg, tt.err.Error()) {
				t.Errorf("message %q lacks %q", f.msg, tt.err)
			}
			if f.failed && errors.Is(tt.err, unavailable) && !strings.Contains(f.msg, EnvRequireDB) {
				t.Errorf("failure %q does not say that %s caused it", f.msg, EnvRequireDB)
			}
		})
	}
}

func TestOpenSharedErrors(t *testing.T) {
	noBinaries := func() (string, error) {
		return "", &unavailableError{"testdb: no PostgreSQL server: set " + EnvPostgresURL}
	}
	tests := []struct {
		name            string
		getenv          func(string) string
		wantUnavailable bool
		wantIn          []string
		wantNotIn       []string
	}{
		{"no URL and no binaries", env(), true, []string{EnvPostgresURL}, nil},
		{"URL of a closed port", env(EnvPostgresURL, "postgres://u:Canary-pw@127.0.0.1:1/postgres?connect_timeout=2"),
			false, []string{EnvPostgresURL, "postgres://u:xxxxx@127.0.0.1:1/postgres"}, []string{"Canary-pw"}},
		{"not a URL", env(EnvPostgresURL, "host=h password=Canary-pw"),
			false, []string{EnvPostgresURL}, []string{"Canary-pw"}},
		{"wrong scheme", env(EnvPostgresURL, "mysql://u:Canary-pw@h/db"),
			false, []string{EnvPostgresURL}, []string{"Canary-pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := openShared(tt.getenv, noBinaries)
			if err == nil {
				s.close()
				t.Fatal("no error")
			}
			var u *unavailableError
			if errors.As(err, &u) != tt.wantUnavailable {
				t.Errorf("unavailable=%v, want %v: %v", !tt.wantUnavailable, tt.wantUnavailable, err)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tt.wantNotIn {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
		})
	}
}

func TestOpenMySQLErrors(t *testing.T) {
	tests := []struct {
		name   string
		getenv func(string) string
	}{
		{"closed port", env(EnvMySQLURL, "mysql://root:Canary-pw@127.0.0.1:1/")},
		{"wrong scheme", env(EnvMySQLURL, "postgres://root:Canary-pw@127.0.0.1:3306/")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, db, err := openMySQL(tt.getenv)
			if err == nil {
				db.Close()
				t.Fatal("no error")
			}
			var u *unavailableError
			if errors.As(err, &u) {
				t.Errorf("a configured but broken server must fail, not skip: %v", err)
			}
			if !strings.Contains(err.Error(), EnvMySQLURL) || strings.Contains(err.Error(), "Canary-pw") {
				t.Errorf("error %q: want it to name %s and hide the password", err, EnvMySQLURL)
			}
		})
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	long := strings.Repeat("VeryLongTestName/", 10) + "TheSpecificEnd"
	tests := []struct {
		testName string
		wantPart string
	}{
		{"TestSimple", "t_testsimple_"},
		{"TestX/sub_test#01", "t_testx_sub_test_01_"},
		{"TestUnicode/ünïcödé name", "t_testunicode_n_c_d_name_"},
		{long, "thespecificend_"},
		{"", "t_"},
	}
	for _, tt := range tests {
		t.Run(tt.testName, func(t *testing.T) {
			a, b := uniqueName("t_", tt.testName), uniqueName("t_", tt.testName)
			if a == b {
				t.Errorf("two calls gave the same name %q", a)
			}
			for _, n := range []string{a, b} {
				if len(n) > maxNameLen || !valid.MatchString(n) || !strings.Contains(n, tt.wantPart) {
					t.Errorf("uniqueName(%q) = %q (%d bytes), want <= %d bytes of [a-z0-9_] containing %q",
						tt.testName, n, len(n), maxNameLen, tt.wantPart)
				}
			}
		})
	}
}

func TestEphemeralNeedsMain(t *testing.T) {
	mainRan.Store(false)
	defer mainRan.Store(true)
	found := func() (string, error) { return "/usr/lib/postgresql/15/bin", nil }
	_, err := openShared(env(), found)
	if !errors.Is(err, errNoMain) {
		t.Fatalf("err = %v, want errNoMain", err)
	}
	var u *unavailableError
	if errors.As(err, &u) {
		t.Error("a missing Main must fail the test, not skip it")
	}
}
