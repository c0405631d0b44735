package shiplock_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cliWording is what only the CLI may say: a shiplock command ("shiplock
// repair", "shiplock %s" with a direction filled in), a repair option, or
// any command-line flag ("--tx-mode file", "--table NAME"). The library
// reports facts (migrate.Problem, typed errors); internal/cli words them.
var cliWording = regexp.MustCompile(`\bshiplock (up|down|redo|status|version|plan|verify|validate|create|fix|repair|wait|await|check|lint|kube|env)\b|\bshiplock %|\brepair --|(^|[\s"'(,;:])--[a-z][a-z0-9]*(-[a-z0-9]+)*\b`)

// libraryWordingDirs are the library packages that hold no CLI wording.
var libraryWordingDirs = []string{"migrate", "gate", "dbwait", "dialect", "locktrace"}

// TestLibraryHoldsNoCLIWording fails when a string literal in a library
// package's non-test Go files tells the operator what to run: that advice
// belongs to internal/cli, which words the library's facts (see
// internal/cli/problems.go). Comments may name commands; literals may not.
func TestLibraryHoldsNoCLIWording(t *testing.T) {
	for _, dir := range libraryWordingDirs {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			files++
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, hit := range cliWordingIn(f) {
				t.Errorf("%s: CLI wording %q in a library string (say the fact; word it in internal/cli): %.120q", fset.Position(hit.pos), hit.match, hit.text)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		// A package moved away must move here too: a guard that reads
		// nothing guards nothing.
		if files == 0 {
			t.Fatalf("%s: no Go files (update libraryWordingDirs)", dir)
		}
	}
}

// TestCLIWordingDetector keeps the guard above honest: it finds command
// advice however the literal is built, and lets facts and SQL through.
func TestCLIWordingDetector(t *testing.T) {
	for _, c := range []struct {
		src  string
		want bool
	}{
		{`fmt.Sprintf("%s: check the database, then run \"shiplock repair --resume\"", f)`, true},
		{`fmt.Sprintf("\"shiplock %s\" resumes it", dir)`, true},
		{`"index " + name + " is INVALID; shiplock up drops it"`, true},
		{"`is NO TRANSACTION; use --tx-mode file`", true},
		{`"only " + "--forget works"`, true},
		{`"shiplock " + "repair"`, true},
		{`fmt.Sprintf("%s: version %d was edited after it was applied", f, v)`, false},
		{"`-- +goose Up\nSELECT 1; -- a comment`", false},
		{`fmt.Sprintf("shiplock host=%s pid=%d", h, p)`, false},
		{`"shiplock_versions"`, false},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nvar _ = "+c.src+"\n", 0)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := len(cliWordingIn(f)) > 0; got != c.want {
			t.Errorf("%s: flagged %v, want %v", c.src, got, c.want)
		}
	}
}

type wordingHit struct {
	pos         token.Pos
	match, text string
}

// cliWordingIn returns the string literals of f (a chain of literals
// joined with + counts as one) that hold CLI wording.
func cliWordingIn(f *ast.File) []wordingHit {
	var hits []wordingHit
	ast.Inspect(f, func(n ast.Node) bool {
		var text string
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			text, _ = strconv.Unquote(n.Value)
		case *ast.BinaryExpr:
			if n.Op != token.ADD {
				return true
			}
			// The literals of a + chain, joined with a space where another
			// operand stands, so "shiplock " + "repair" reads as one.
			var parts []string
			var walk func(ast.Expr)
			walk = func(e ast.Expr) {
				switch e := e.(type) {
				case *ast.BinaryExpr:
					if e.Op == token.ADD {
						walk(e.X)
						walk(e.Y)
						return
					}
				case *ast.ParenExpr:
					walk(e.X)
					return
				case *ast.BasicLit:
					if e.Kind == token.STRING {
						s, _ := strconv.Unquote(e.Value)
						parts = append(parts, s)
						return
					}
				}
				parts = append(parts, " ")
			}
			walk(n)
			text = strings.Join(parts, "")
		default:
			return true
		}
		if m := cliWording.FindString(text); m != "" {
			hits = append(hits, wordingHit{pos: n.Pos(), match: strings.TrimSpace(m), text: text})
			return false // one report per expression
		}
		return true
	})
	return hits
}
