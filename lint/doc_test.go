package lint_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/lint"
)

var update = flag.Bool("update", false, "rewrite the rules section of docs/safety.md")

const (
	rulesBegin = "<!-- rules: begin -->\n"
	rulesEnd   = "<!-- rules: end -->"
)

// TestSafetyDoc: docs/safety.md lists every rule with its id, severity,
// why and safe rewrite, as lint/rules.go has them.
func TestSafetyDoc(t *testing.T) {
	const path = "../docs/safety.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	b, e := strings.Index(doc, rulesBegin), strings.Index(doc, rulesEnd)
	if b < 0 || e < b {
		t.Fatalf("%s has no %q ... %q section", path, rulesBegin, rulesEnd)
	}
	var s strings.Builder
	class := lint.Class("")
	for _, r := range lint.Rules() {
		if r.Class != class {
			class = r.Class
			title := map[lint.Class]string{lint.Lock: "Locks and rewrites", lint.Rolling: "Rolling updates (the previous release still serves)", lint.Hygiene: "The file itself"}[class]
			fmt.Fprintf(&s, "\n### %s\n\n| id | severity | why | safe rewrite |\n|---|---|---|---|\n", title)
		}
		fmt.Fprintf(&s, "| `%s` | %s | %s | %s |\n", r.ID, r.Severity, esc(r.Why), esc(r.Fix))
	}
	s.WriteString("\n")
	want := doc[:b+len(rulesBegin)] + s.String() + doc[e:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Errorf("%s's rules differ from lint/rules.go; run go test ./lint -run TestSafetyDoc -update", path)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
