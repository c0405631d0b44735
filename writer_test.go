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

// writesVersionRows matches SQL that writes rows of goose's version table.
var writesVersionRows = regexp.MustCompile(`(?is)\b(insert\s+into|delete\s+from|update)\s+goose_db_version\b`)

// TestOneWriterOfVersionRows: outside tests, only a dialect's
// AppliedStatements and RevertedStatements write goose_db_version rows (the
// one writer that MarkApplied, MarkReverted and the pipelined RunTx all
// use), besides the version-0 row CreateVersionTable inserts as goose does.
// A second writer could drift from the first unseen, as the old
// MarkApplied and MarkAppliedSQL could.
func TestOneWriterOfVersionRows(t *testing.T) {
	type constant struct{ dir, name, pos string }
	var (
		consts []constant
		uses   = map[string]map[string][]string{} // dir -> const name -> enclosing funcs
		found  int
	)
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != "." && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || e.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if uses[dir] == nil {
			uses[dir] = map[string][]string{}
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				ast.Inspect(d, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.Ident:
						uses[dir][n.Name] = append(uses[dir][n.Name], d.Name.Name)
					case *ast.BasicLit:
						if !writesSQL(n) {
							return true
						}
						found++
						if d.Name.Name != "AppliedStatements" && d.Name.Name != "RevertedStatements" {
							t.Errorf("%s: %s writes goose_db_version rows; only AppliedStatements and RevertedStatements may", fset.Position(n.Pos()), d.Name.Name)
						}
					}
					return true
				})
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, v := range vs.Values {
						ast.Inspect(v, func(n ast.Node) bool {
							if lit, ok := n.(*ast.BasicLit); ok && writesSQL(lit) {
								found++
								consts = append(consts, constant{dir, vs.Names[i].Name, fset.Position(lit.Pos()).String()})
							}
							return true
						})
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no writer of goose_db_version rows found: the pattern no longer matches the dialects' SQL")
	}
	for _, c := range consts {
		for _, fn := range uses[c.dir][c.name] {
			if fn != "CreateVersionTable" {
				t.Errorf("%s: %s, which writes goose_db_version rows, is used in %s; only CreateVersionTable (its version-0 row) may use such a constant", c.pos, c.name, fn)
			}
		}
	}
}

func writesSQL(lit *ast.BasicLit) bool {
	if lit.Kind != token.STRING {
		return false
	}
	s, err := strconv.Unquote(lit.Value)
	return err == nil && writesVersionRows.MatchString(s)
}
