package lint

import (
	"bytes"
	"sort"
	"strings"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// hygiene adds the file-level findings: Down missing or not inverting the
// Up, and a NO TRANSACTION file that cannot be run again after a failure.
func (c *checker) hygiene(fc *fileCtx, f *sqlfile.File, up, down [][]stmt) {
	fc.down = false
	if len(f.Up) == 0 {
		return
	}
	if f.Down == nil {
		c.report(fc, f.Up[0].Line, RuleDownMissing, "no Down statements")
	} else if miss := notInverted(up, down); len(miss) > 0 {
		c.report(fc, f.Down[0].Line, RuleDownNotInverse, "the Down section does not drop %s", strings.Join(miss, ", "))
	}
	if fc.notx && len(up) > 1 {
		for _, gs := range up[:len(up)-1] {
			for _, s := range gs {
				if !s.idempotent {
					c.report(fc, s.line, RuleNotxIdempotent, "%s is not idempotent, and later statements of this NO TRANSACTION file can fail after it ran", verb(s))
					return
				}
			}
		}
	}
}

func verb(s stmt) string {
	if s.verb != "" {
		return s.verb
	}
	n := min(2, len(s.toks))
	var w []string
	for _, t := range s.toks[:n] {
		w = append(w, upper(t.text))
	}
	return strings.Join(w, " ")
}

// notInverted lists the tables, columns and named indexes the Up creates
// that the Down neither drops nor drops the table of.
func notInverted(up, down [][]stmt) []string {
	dropped := map[string]bool{}
	for _, gs := range down {
		for _, s := range gs {
			switch s.kind {
			case sDropTable:
				for _, t := range s.tables {
					dropped["table "+t] = true
				}
			case sDropIndex:
				dropped["index "+s.index] = true
			case sAlterTable:
				for _, a := range s.actions {
					switch a.kind {
					case aDropColumn:
						dropped["column "+s.table+"."+a.name] = true
					case aRenameTable:
						dropped["table "+s.table] = true
					}
				}
			}
		}
	}
	var miss []string
	for _, gs := range up {
		for _, s := range gs {
			switch s.kind {
			case sCreateTable:
				if !dropped["table "+s.table] {
					miss = append(miss, "table "+s.table)
				}
			case sCreateIndex:
				if s.index != "" && !dropped["index "+s.index] && !dropped["table "+s.table] {
					miss = append(miss, "index "+s.index)
				}
			case sAlterTable:
				for _, a := range s.actions {
					if a.kind == aAddColumn && !dropped["column "+s.table+"."+a.name] && !dropped["table "+s.table] {
						miss = append(miss, "column "+s.table+"."+a.name)
					}
				}
			}
		}
	}
	return miss
}

// An ignore is one "-- shiplock:ignore RULE[,RULE] reason" comment.
type ignore struct {
	line   int
	rules  []string
	reason string
	used   bool
}

var ignoreMarker = []byte("shiplock:ignore")

func readIgnores(src []byte) []ignore {
	var out []ignore
	line := 0
	for len(src) > 0 {
		line++
		l := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			l, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		i := bytes.Index(l, ignoreMarker)
		if i < 0 || !bytes.Contains(l[:i], []byte("--")) {
			continue
		}
		fields := strings.Fields(string(l[i+len(ignoreMarker):]))
		ig := ignore{line: line}
		if len(fields) > 0 {
			ig.rules = strings.Split(fields[0], ",")
			ig.reason = strings.Join(fields[1:], " ")
		}
		out = append(out, ig)
	}
	return out
}

// suppress drops the findings that a shiplock:ignore with a reason covers:
// the statement holding the comment or the first one after it; for a
// file-level rule, anywhere in the file. Bad comments become findings.
func (c *checker) suppress(fc *fileCtx, f *sqlfile.File) []Finding {
	if fc.in.Src == nil || !bytes.Contains(fc.in.Src, ignoreMarker) {
		return fc.findings
	}
	igs := readIgnores(fc.in.Src)
	type span struct{ start, end int }
	var spans []span
	for _, ss := range [][]sqlfile.Statement{f.Up, f.Down} {
		for _, s := range ss {
			spans = append(spans, span{s.Line, s.Line + strings.Count(s.SQL, "\n")})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	target := func(line int) span {
		for _, sp := range spans {
			if sp.end >= line {
				return sp
			}
		}
		return span{-1, -1}
	}
	var valid []*ignore
	for i := range igs {
		ig := &igs[i]
		bad := ""
		switch {
		case len(ig.rules) == 0:
			bad = "names no rule"
		case ig.reason == "":
			bad = "gives no reason"
		}
		for _, r := range ig.rules {
			if _, ok := ruleByID[r]; !ok && bad == "" {
				bad = "names unknown rule " + r
			}
		}
		if bad != "" {
			c.report(fc, ig.line, RuleBadIgnore, "shiplock:ignore %s", bad)
			continue
		}
		valid = append(valid, ig)
	}
	out := fc.findings[:0]
	for _, fd := range fc.findings {
		covered := false
		for _, ig := range valid {
			if !contains(ig.rules, fd.Rule) {
				continue
			}
			if ruleByID[fd.Rule].Class == Hygiene {
				covered = true
				break
			}
			if sp := target(ig.line); sp.start <= fd.Line && fd.Line <= sp.end {
				covered = true
				break
			}
		}
		if covered {
			c.rep.Suppressed++
			continue
		}
		out = append(out, fd)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
