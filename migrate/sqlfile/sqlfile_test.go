package sqlfile

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testLookup resolves ENVSUB variables from oracleEnv, the environment the
// differential tests give goose.
func testLookup(name string) (string, bool) {
	v, ok := oracleEnv[name]
	return v, ok
}

// TestValid parses testdata/valid/*.sql and compares a rendering of the
// result with the .golden file next to it.
func TestValid(t *testing.T) {
	for _, name := range testFiles(t, "testdata/valid") {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".sql"), func(t *testing.T) {
			t.Parallel()
			f, err := parseFile(t, name)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkGolden(t, strings.TrimSuffix(name, ".sql")+".golden", render(f))
		})
	}
}

// TestInvalid parses testdata/invalid/*.sql and compares the error with the
// .golden file next to it.
func TestInvalid(t *testing.T) {
	for _, name := range testFiles(t, "testdata/invalid") {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".sql"), func(t *testing.T) {
			t.Parallel()
			f, err := parseFile(t, name)
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; got\n%s", render(f))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ParseError: %v", err, err)
			}
			if pe.File != filepath.Base(name) {
				t.Errorf("ParseError.File = %q, want %q", pe.File, filepath.Base(name))
			}
			checkGolden(t, strings.TrimSuffix(name, ".sql")+".golden", err.Error()+"\n")
		})
	}
}

// TestTestdataAgreesWithGoose runs every testdata file through goose v3.
func TestTestdataAgreesWithGoose(t *testing.T) {
	setOracleEnv(t)
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		for _, name := range testFiles(t, dir) {
			t.Run(name, func(t *testing.T) {
				src, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				compareWithGoose(t, src)
			})
		}
	}
}

func testFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no test files in %s (%v)", dir, err)
	}
	return names
}

func parseFile(tb testing.TB, name string) (*File, error) {
	tb.Helper()
	fh, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fh.Close() })
	return Parse(filepath.Base(name), fh, testLookup)
}

// render prints a File for golden files: the flags, then each statement
// under a header with its direction, index and line.
func render(f *File) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no transaction: %v\n", f.NoTransaction)
	for _, d := range []struct {
		name  string
		stmts []Statement
	}{{"up", f.Up}, {"down", f.Down}} {
		fmt.Fprintf(&b, "%s statements: %d\n", d.name, len(d.stmts))
		for i, s := range d.stmts {
			fmt.Fprintf(&b, "=== %s %d, line %d\n", d.name, i+1, s.Line)
			if s.SQL == "" {
				b.WriteString("(empty)\n")
				continue
			}
			b.WriteString(s.SQL)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestParseError(t *testing.T) {
	_, err := Parse("0001_x.sql", strings.NewReader("-- +goose Up\n-- +goose Sideways\n"), nil)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error is %T, want *ParseError: %v", err, err)
	}
	if pe.File != "0001_x.sql" || pe.Line != 2 {
		t.Errorf("got File %q Line %d, want 0001_x.sql line 2", pe.File, pe.Line)
	}
	if want := "0001_x.sql:2: " + pe.Msg; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("a syntax error unwraps to %v, want nil", errors.Unwrap(err))
	}
}

func TestReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("-- +goose Up\nSELECT 1;\n"), iotest.ErrReader(iotest.ErrTimeout))
	_, err := Parse("x.sql", r, nil)
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("got %v, want a *ParseError wrapping iotest.ErrTimeout", err)
	}
	if pe.Line != 3 {
		t.Errorf("Line = %d, want 3 (the line being read)", pe.Line)
	}
}

// TestLongLine checks goose's 4 MiB line limit on both sides of the edge.
func TestLongLine(t *testing.T) {
	const limit = 4 << 20 // a line and its "\n" must fit
	for _, tc := range []struct {
		name string
		n    int // length of the long line without "\n"
		ok   bool
	}{
		{"fits", limit - 1, true},
		{"too long", limit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			long := "SELECT '" + strings.Repeat("x", tc.n-len("SELECT '';")) + "';"
			src := "-- +goose Up\n" + long + "\n-- +goose Down\n"
			f, err := Parse("long.sql", strings.NewReader(src), nil)
			if tc.ok {
				if err != nil || len(f.Up) != 1 || f.Up[0].SQL != long {
					t.Fatalf("Parse: %v", err)
				}
			} else if !errors.Is(err, bufio.ErrTooLong) {
				t.Fatalf("got %v, want bufio.ErrTooLong", err)
			} else if err.(*ParseError).Line != 2 {
				t.Errorf("error %v, want line 2", err)
			}
			compareWithGoose(t, []byte(src))
		})
	}
}

func TestLookup(t *testing.T) {
	src := "-- +goose Up\nSELECT '$A ${A}';\n-- +goose ENVSUB ON\nSELECT '$A|${B:-b}|${C-c}|${D:-d}|${D-d}';\n"
	for _, tc := range []struct {
		name   string
		lookup func(string) (string, bool)
		want   string
	}{
		{"nil", nil, "SELECT '|b|c|d|d';"},
		{"set", func(k string) (string, bool) {
			return map[string]string{"A": "a", "D": ""}[k], k == "A" || k == "D"
		}, "SELECT 'a|b|c|d|';"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("env.sql", strings.NewReader(src), tc.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got := sqlOf(f.Up); len(got) != 2 || got[0] != "SELECT '$A ${A}';" || got[1] != tc.want {
				t.Errorf("got %q, want [%q %q]", got, "SELECT '$A ${A}';", tc.want)
			}
		})
	}
}

func TestLookupOnlyUnderEnvsub(t *testing.T) {
	src := "-- +goose Up\nSELECT '${A}';\n-- +goose ENVSUB ON\n-- ${B} in a comment before a statement is not expanded\nSELECT 1;\n"
	var asked []string
	_, err := Parse("env.sql", strings.NewReader(src), func(k string) (string, bool) {
		asked = append(asked, k)
		return "", false
	})
	if err != nil || len(asked) != 0 {
		t.Fatalf("Parse: %v; lookup called for %q, want no call", err, asked)
	}
}

// TestGooseQuirks pins behaviours that surprised us, each checked against
// goose itself.
func TestGooseQuirks(t *testing.T) {
	setOracleEnv(t)
	for _, tc := range []struct {
		name string
		src  string
		up   []string // nil: the file is invalid
	}{
		{"vertical tab before annotation is not leading white space", "\v-- +goose Up\nSELECT 1;\n", []string{"SELECT 1;"}},
		{"no space after dashes", "--+goose Up\nSELECT 1;\n", []string{"SELECT 1;"}},
		{"dashes after the name", "-- +goose Up --\nSELECT 1;\n", []string{"SELECT 1;"}},
		{"dashes inside the name", "-- +goose U--p\nSELECT 1;\n", []string{"SELECT 1;"}},
		{"three dashes", "--- +goose Up\nSELECT 1;\n", nil},
		{"upper-case marker is a comment", "-- +GOOSE Up\n-- +goose Up\nSELECT 1;\n", []string{"SELECT 1;"}},
		{"unicode case folding", "-- +goose envſub on\n-- +goose Up\nSELECT '$SQLFILE_SCHEMA';\n", []string{"SELECT 'app';"}},
		{"envsub turns $$ into $", "-- +goose ENVSUB ON\n-- +goose Up\nDO $$ BEGIN END $$;\n", []string{"DO $ BEGIN END $;"}},
		{"unicode space separates words", "-- +goose Up\nSELECT 1\u00a0;\u2003-- c\nSELECT 2;\n", []string{"SELECT 1\u00a0;\u2003-- c", "SELECT 2;"}},
		{"CR alone is not a line end", "-- +goose Up\rSELECT 1;\r", nil},
		{"comment-only block then down", "-- +goose Up\n-- +goose StatementBegin\n-- c\n-- +goose StatementEnd\n-- +goose Down\nSELECT 1;\n", []string{}},
		{"spaces-only block", "-- +goose Up\n-- +goose StatementBegin\n  \n-- +goose StatementEnd\nSELECT 1;\n", []string{"", "SELECT 1;"}},
		{"whitespace only before down", "-- +goose Up\n \t \n-- +goose Down\nSELECT 1;\n", []string{}},
		{"expansion that is empty starts a statement", "-- +goose Up\n-- +goose ENVSUB ON\n$SQLFILE_EMPTY\n-- kept\nSELECT 1;\n", []string{"-- kept\nSELECT 1;"}},
		{"expansion that ends in semicolon", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT $SQLFILE_SEMI\n", []string{"SELECT x;"}},
		{"expansion with newline", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '$SQLFILE_NL';\n", []string{"SELECT 'one\ntwo';"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareWithGoose(t, []byte(tc.src))
			f, err := Parse("q.sql", strings.NewReader(tc.src), testLookup)
			if tc.up == nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.File != "q.sql" || pe.Line < 1 {
					t.Fatalf("Parse = %v, want a *ParseError with q.sql and a line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sqlOf(f.Up); strings.Join(got, "\x00") != strings.Join(tc.up, "\x00") || len(got) != len(tc.up) {
				t.Errorf("up = %q, want %q", got, tc.up)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("testdata/valid/plpgsql_function_trigger.sql")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.sql", strings.NewReader(string(src)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
