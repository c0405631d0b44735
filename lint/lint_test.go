package lint_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/lint"
)

func check(t *testing.T, o lint.Options, files ...lint.Input) *lint.Report {
	t.Helper()
	rep, err := lint.Check(files, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func file(v int64, src string) lint.Input {
	return lint.Input{Name: "m.sql", Version: v, Src: []byte(src)}
}

// TestBaseline: a table created before the baseline exists (a plain
// index on it is reported), one created after it is new (not reported),
// in the same file or an earlier new one.
func TestBaseline(t *testing.T) {
	create := "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n"
	index := "-- +goose Up\nCREATE INDEX t_id ON t (id);\n-- +goose Down\nDROP INDEX t_id;\n"
	a, b := file(1, create), file(2, index)
	if rep := check(t, lint.Options{}, a, b); len(rep.Findings) != 0 {
		t.Errorf("table created by a new file: got %v", rep.Findings)
	}
	a.Applied = true
	rep := check(t, lint.Options{}, a, b)
	if len(rep.Findings) != 1 || rep.Findings[0].Rule != lint.RuleCreateIndex || rep.Findings[0].Line != 2 {
		t.Errorf("table created by an applied file: got %v", rep.Findings)
	}
	if rep.Checked != 1 || rep.Read != 2 {
		t.Errorf("checked %d of %d, want 1 of 2", rep.Checked, rep.Read)
	}
}

// TestDownIsMilder: the Down section's DROPs of what the Up created are not
// findings, and its lock hazards are warnings.
func TestDownIsMilder(t *testing.T) {
	src := "-- +goose Up\nALTER TABLE users ADD COLUMN nick text;\n-- +goose Down\nALTER TABLE users DROP COLUMN nick;\nCREATE INDEX u_n ON users (name);\nDROP TABLE users_archive;\n"
	rep := check(t, lint.Options{}, file(1, src))
	if len(rep.Findings) != 1 {
		t.Fatalf("got %v, want one create-index-lock warning", rep.Findings)
	}
	f := rep.Findings[0]
	if f.Rule != lint.RuleCreateIndex || f.Severity != lint.Warning || f.Section != "down" || f.Line != 5 {
		t.Errorf("got %+v", f)
	}
}

// TestSuppression: an ignore with a reason covers its statement only; one
// without a reason covers nothing and is a finding.
func TestSuppression(t *testing.T) {
	src := `-- +goose Up
-- shiplock:ignore drop-column nothing reads it since v41
ALTER TABLE users DROP COLUMN a;
ALTER TABLE users DROP COLUMN b;
ALTER TABLE users DROP COLUMN c; -- shiplock:ignore drop-column,rename-column gone in v40
-- shiplock:ignore drop-column
ALTER TABLE users DROP COLUMN d;
-- +goose Down
SELECT 1;
`
	rep := check(t, lint.Options{Disable: []string{lint.RuleDownNotInverse}}, file(1, src))
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Rule+"@"+string(rune('0'+f.Line)))
	}
	want := "drop-column@4 bad-ignore@6 drop-column@7"
	if strings.Join(got, " ") != want || rep.Suppressed != 2 {
		t.Errorf("got %v (suppressed %d), want %s (suppressed 2)", got, rep.Suppressed, want)
	}
}

// TestTransactions: goose's transaction per file, NO TRANSACTION, and an
// implicit transaction for several statements sent as one string.
func TestTransactions(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want int
	}{
		{"-- +goose Up\nCREATE INDEX CONCURRENTLY i ON users (a);\n", 1},
		{"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON users (a);\n", 0},
		{"-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1; CREATE INDEX CONCURRENTLY i ON users (a);\n", 1},
	} {
		rep := check(t, lint.Options{Disable: []string{lint.RuleDownMissing}}, file(1, tt.src))
		if len(rep.Findings) != tt.want {
			t.Errorf("%q: got %v, want %d concurrently-in-tx", tt.src, rep.Findings, tt.want)
		}
	}
}

func TestParseErrorIsReturned(t *testing.T) {
	_, err := lint.Check([]lint.Input{file(1, "CREATE TABLE t (id int);\n")}, lint.Options{})
	if err == nil || !strings.Contains(err.Error(), "m.sql:1:") {
		t.Errorf("got %v, want a file:line error", err)
	}
}

func TestOutputs(t *testing.T) {
	rep := check(t, lint.Options{}, file(7, "-- +goose Up\nCREATE INDEX i ON users (a);\n"))
	var b bytes.Buffer
	if err := lint.WriteSARIF(&b, rep.Findings); err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &sarif); err != nil {
		t.Fatal(err)
	}
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Tool.Driver.Rules) != len(lint.Rules()) {
		t.Fatalf("bad SARIF log: %s", b.String())
	}
	var levels []string
	for _, r := range sarif.Runs[0].Results {
		loc := r.Locations[0].PhysicalLocation
		levels = append(levels, r.RuleID+":"+r.Level+":"+loc.ArtifactLocation.URI+":"+string(rune('0'+loc.Region.StartLine)))
	}
	if got := strings.Join(levels, " "); got != "create-index-lock:error:m.sql:2 down-missing:note:m.sql:2" {
		t.Errorf("SARIF results: %s", got)
	}

	b.Reset()
	f := []lint.Finding{{File: "a,b:c.sql", Line: 3, Rule: "drop-table", Severity: lint.Warning, Message: "50% of\nit", Fix: "x"}}
	if err := lint.WriteGitHub(&b, f); err != nil {
		t.Fatal(err)
	}
	if want := "::warning file=a%2Cb%3Ac.sql,line=3,title=shiplock drop-table::50%25 of%0Ait. Fix: x\n"; b.String() != want {
		t.Errorf("github: %q, want %q", b.String(), want)
	}
}
