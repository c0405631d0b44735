package lint_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/lint"
	"github.com/shiplock/shiplock/lint/linttest"
)

func readCases(t *testing.T) []linttest.Case {
	t.Helper()
	cases, err := linttest.Read("testdata/labelled.sql")
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func findings(t *testing.T, c linttest.Case) []lint.Finding {
	t.Helper()
	rep, err := lint.Check(c.Inputs(), c.Options())
	if err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	return rep.Findings
}

// TestRules: every rule has a hazardous and a safe case; each hazardous
// case reports its rule, each safe case reports nothing.
func TestRules(t *testing.T) {
	cases := readCases(t)
	seen := map[string][2]int{}
	for _, c := range cases {
		n := seen[c.Rule]
		if c.Hazard {
			n[0]++
		} else {
			n[1]++
		}
		seen[c.Rule] = n
		t.Run(c.Name(), func(t *testing.T) {
			fs := findings(t, c)
			if c.Hazard {
				for _, f := range fs {
					if f.Rule == c.Rule {
						return
					}
				}
				t.Errorf("%s not reported; got %v\n%s", c.Rule, rulesOf(fs), c.File())
				return
			}
			if len(fs) > 0 {
				t.Errorf("safe case reported %v\n%s", describe(fs), c.File())
			}
		})
	}
	for _, r := range lint.Rules() {
		if n := seen[r.ID]; n[0] == 0 || n[1] == 0 {
			t.Errorf("rule %s has %d hazardous and %d safe cases; want one of each at least", r.ID, n[0], n[1])
		}
	}
}

// TestLabelledSet: the confusion table of the labelled set; no false
// positive on the safe cases, and every hazardous case found.
func TestLabelledSet(t *testing.T) {
	cases := readCases(t)
	var tp, fn, tn, fp, hazards, safes int
	for _, c := range cases {
		fs := findings(t, c)
		if c.Hazard {
			hazards++
			if hasRule(fs, c.Rule) {
				tp++
			} else {
				fn++
			}
			continue
		}
		safes++
		if len(fs) == 0 {
			tn++
		} else {
			fp++
		}
	}
	t.Logf("labelled set: %d hazardous, %d safe\n                 reported   not reported\nhazardous   %8d   %8d\nsafe        %8d   %8d\nrecall %.1f%%",
		hazards, safes, tp, fn, fp, tn, 100*float64(tp)/float64(hazards))
	if hazards < 60 || safes < 60 {
		t.Errorf("the labelled set has %d hazardous and %d safe cases; want at least 60 of each", hazards, safes)
	}
	if fp != 0 {
		t.Errorf("%d false positives on the safe set", fp)
	}
	if fn != 0 {
		t.Errorf("recall %d/%d; want every hazardous case found", tp, hazards)
	}
}

func hasRule(fs []lint.Finding, id string) bool {
	for _, f := range fs {
		if f.Rule == id {
			return true
		}
	}
	return false
}

func rulesOf(fs []lint.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func describe(fs []lint.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %d: %s %s", f.Line, f.Rule, f.Message)
	}
	return b.String()
}
