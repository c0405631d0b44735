// Package linttest reads the labelled set of lint/testdata/labelled.sql,
// shared by lint's tests and the bench that runs squawk on the same cases.
package linttest

import (
	"fmt"
	"os"
	"strings"

	"github.com/shiplock/shiplock/lint"
)

// Case is one labelled case.
type Case struct {
	Line   int    // line of its "-- case" header
	Hazard bool   // hazard (true) or safe
	Rule   string // the rule it exercises
	NoTx   bool
	Before []string // SQL of the applied file before it
	Body   string   // its SQL
}

// Name is "hazard/RULE@LINE" or "safe/RULE@LINE".
func (c Case) Name() string {
	kind := "safe"
	if c.Hazard {
		kind = "hazard"
	}
	return fmt.Sprintf("%s/%s@%d", kind, c.Rule, c.Line)
}

// Raw reports whether the body is a whole goose file.
func (c Case) Raw() bool { return strings.Contains(c.Body, "-- +goose Up") }

// File is the case as the new migration file.
func (c Case) File() string {
	if c.Raw() {
		return c.Body
	}
	h := "-- +goose Up\n"
	if c.NoTx {
		h = "-- +goose NO TRANSACTION\n" + h
	}
	return h + c.Body
}

// Inputs is the case as lint inputs: the applied file of its "before"
// lines, if any, then the case.
func (c Case) Inputs() []lint.Input {
	var in []lint.Input
	if len(c.Before) > 0 {
		in = append(in, lint.Input{Name: "1_before.sql", Version: 1, Applied: true,
			Src: []byte("-- +goose Up\n" + strings.Join(c.Before, "\n") + "\n")})
	}
	return append(in, lint.Input{Name: "2_case.sql", Version: 2, Src: []byte(c.File())})
}

// Options are the options a case is checked with: a case that is not a
// whole file has no Down section, and down-missing is not what it tests.
func (c Case) Options() lint.Options {
	if c.Raw() {
		return lint.Options{}
	}
	return lint.Options{Disable: []string{lint.RuleDownMissing}}
}

// Read reads the labelled set.
func Read(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Case
	var cur *Case
	for n, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "-- case "); ok {
			f := strings.Fields(rest)
			if len(f) < 2 || (f[0] != "hazard" && f[0] != "safe") {
				return nil, fmt.Errorf("%s:%d: want \"-- case hazard|safe RULE [notx]\"", path, n+1)
			}
			if _, ok := lint.Lookup(f[1]); !ok {
				return nil, fmt.Errorf("%s:%d: unknown rule %q", path, n+1, f[1])
			}
			out = append(out, Case{Line: n + 1, Hazard: f[0] == "hazard", Rule: f[1], NoTx: len(f) > 2 && f[2] == "notx"})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if b, ok := strings.CutPrefix(line, "-- before: "); ok {
			cur.Before = append(cur.Before, b)
			continue
		}
		if strings.TrimSpace(line) == "" && !cur.Raw() {
			continue
		}
		cur.Body += line + "\n"
	}
	for i := range out {
		out[i].Body = strings.TrimRight(out[i].Body, "\n") + "\n"
	}
	return out, nil
}
