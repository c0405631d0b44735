package sqlfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse checks that Parse never panics, that its errors are
// *ParseError with a line inside the file, that statement lines point at
// the statement's text, and that goose v3 accepts and splits every input
// exactly as Parse does (but for NUL bytes, which Parse rejects).
//
// testdata/fuzz/FuzzParse holds inputs that once failed. test/all.sh runs
// the fuzzer for a bounded time in CI (SHIPLOCK_FUZZTIME).
func FuzzParse(f *testing.F) {
	setOracleEnv(f)
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sql"))
		for _, name := range files {
			src, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz.sql", bytes.NewReader(src), os.LookupEnv)
		lines := scanLines(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
			if pe.Line < 1 || pe.Line > max(len(lines), 1) {
				t.Fatalf("error line %d outside 1..%d: %v", pe.Line, len(lines), err)
			}
		} else {
			checkLines(t, src, lines, file.Up)
			checkLines(t, src, lines, file.Down)
		}
		compareWithGoose(t, src)
	})
}

// checkLines checks that each statement's Line is the source line its
// first text comes from. ENVSUB changes text: a line with "$" may expand
// to anything (the comparison with goose checks those), and bytes that are
// not valid UTF-8 become U+FFFD each, as in goose (interpolate works on
// runes), so a line is compared both as it is and so converted.
func checkLines(t *testing.T, src []byte, lines []string, stmts []Statement) {
	t.Helper()
	for _, s := range stmts {
		if s.Line < 1 || s.Line > len(lines) {
			t.Fatalf("statement line %d outside 1..%d: %q", s.Line, len(lines), s.SQL)
		}
		if s.SQL == "" || bytes.Contains(src, []byte("$")) {
			continue
		}
		first, _, _ := strings.Cut(s.SQL, "\n")
		line := strings.TrimLeftFunc(lines[s.Line-1], unicode.IsSpace)
		if !strings.HasPrefix(line, first) && !strings.HasPrefix(string([]rune(line)), first) {
			t.Fatalf("statement %q says line %d, which is %q", s.SQL, s.Line, lines[s.Line-1])
		}
	}
}

// scanLines splits src as bufio.ScanLines does.
func scanLines(src []byte) []string {
	var lines []string
	for len(src) > 0 {
		line, rest, found := bytes.Cut(src, []byte("\n"))
		if !found {
			rest = nil
		}
		lines = append(lines, string(bytes.TrimSuffix(line, []byte("\r"))))
		src = rest
	}
	return lines
}

// fuzzLines are the lines FuzzParseLines builds files from: annotations in
// their accepted and rejected spellings, comments, statement ends and
// ENVSUB material.
var fuzzLines = [...]string{
	"-- +goose Up",
	"-- +goose Down",
	"-- +goose StatementBegin",
	"-- +goose StatementEnd",
	"-- +goose NO TRANSACTION",
	"-- +goose ENVSUB ON",
	"-- +goose ENVSUB OFF",
	"--+goose up  ",
	"-- +goose statementbegin\t",
	"--   +goose STATEMENTEND",
	" -- +goose Down",
	"\t-- +goose StatementEnd",
	"\v-- +goose StatementBegin",
	"-- +goose Up -- note",
	"-- +goose",
	"-- +goose +goose Up",
	"-- see +goose",
	"-- +GOOSE Up",
	"-- c",
	"-- c;",
	"   -- c",
	"/* c */",
	"SELECT 1;",
	"SELECT 1",
	"SELECT 1; -- c",
	"SELECT 1;-- c",
	"SELECT 1 -- c;",
	";",
	"   ",
	"\t",
	"",
	"SELECT 1; /* c */",
	"SELECT '$SQLFILE_SCHEMA';",
	"SELECT '${SQLFILE_UNSET:-d}';",
	"SELECT '${SQLFILE_EMPTY-d}'",
	"SELECT $1;",
	"DO $$ BEGIN END $$;",
	"$SQLFILE_SEMI",
	"$SQLFILE_EMPTY",
	"$SQLFILE_DASH",
	"SELECT '${SQLFILE_NL}'",
	"SELECT ${",
	"SELECT 1\u00a0;",
	"SELECT 1;\u2003-- c",
	"END;",
	"$$ LANGUAGE plpgsql;",
}

// FuzzParseLines is FuzzParse on files assembled from fuzzLines, which
// reaches deep parser states far faster than random bytes. Each byte picks a
// line; its high bits pick the line ending ("\n", "\r\n", or none, which
// glues the line to the next one).
func FuzzParseLines(f *testing.F) {
	setOracleEnv(f)
	f.Add([]byte{0, 22, 2, 36, 3, 1, 23})
	f.Add([]byte{5, 0, 2, 18, 3, 22, 1, 28, 19})
	f.Fuzz(func(t *testing.T, picks []byte) {
		var src []byte
		for _, b := range picks {
			src = append(src, fuzzLines[int(b&0x3f)%len(fuzzLines)]...)
			switch b >> 6 {
			case 0, 1:
				src = append(src, '\n')
			case 2:
				src = append(src, "\r\n"...)
			}
		}
		if _, err := Parse("fuzz.sql", bytes.NewReader(src), os.LookupEnv); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
		}
		compareWithGoose(t, src)
	})
}
