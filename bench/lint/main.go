// Command lint measures `shiplock lint` against squawk (the squawk-cli
// package's native binary) in one run, on the same generated goose set:
// wall time and peak RSS (GNU time), the findings of squawk's two noise
// classes on goose files (a DROP in a Down section; a plain index on a
// table created in the same file), and, on the labelled set of
// lint/testdata/labelled.sql, each tool's recall on the rules both have.
// It is a program, not a test.
//
//	bench/lint/setup-squawk.sh                # installs squawk-cli into $TMPDIR
//	go run ./bench/lint [--files 1000] [--reps 5] [--squawk PATH] [--keep bench/results]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shiplock/shiplock/lint"
	"github.com/shiplock/shiplock/lint/linttest"
)

// squawkRules maps squawk's rule names to shiplock's, for the rules both
// have.
var squawkRules = map[string]string{
	"require-concurrent-index-creation":            lint.RuleCreateIndex,
	"ban-concurrent-index-creation-in-transaction": lint.RuleConcurrentlyInTx,
	"adding-field-with-default":                    lint.RuleVolatileDefault,
	"changing-column-type":                         lint.RuleTypeRewrite,
	"adding-not-nullable-field":                    lint.RuleSetNotNull,
	"constraint-missing-not-valid":                 lint.RuleConstraintNotValid,
	"adding-foreign-key-constraint":                lint.RuleConstraintNotValid,
	"disallowed-unique-constraint":                 lint.RuleUniqueConstraint,
	"adding-serial-primary-key-field":              lint.RuleUniqueConstraint,
	"require-concurrent-reindex":                   lint.RuleReindex,
	"renaming-column":                              lint.RuleRenameColumn,
	"renaming-table":                               lint.RuleRenameTable,
	"ban-drop-column":                              lint.RuleDropColumn,
	"ban-drop-table":                               lint.RuleDropTable,
	"adding-required-field":                        lint.RuleAddNotNull,
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lint bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	Wall  float64 `json:"wall_s"`
	RSSKB int64   `json:"max_rss_kb"`
}

type finding struct {
	file string
	line int
	rule string
}

func run() error {
	files := flag.Int("files", 1000, "generated goose files")
	reps := flag.Int("reps", 5, "timed runs of each tool")
	squawk := flag.String("squawk", "", "squawk binary (default: the squawk-cli package that bench/lint/setup-squawk.sh installs)")
	keep := flag.String("keep", "", "also write the results to DIR/lint-<date>.md")
	flag.Parse()
	if *squawk == "" {
		*squawk = filepath.Join(os.TempDir(), "shiplock-squawk", "node_modules", "@squawk-cli", "linux-x64", "bin", "squawk")
	}
	if _, err := os.Stat(*squawk); err != nil {
		return fmt.Errorf("squawk: %v (run bench/lint/setup-squawk.sh, or pass --squawk)", err)
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return fmt.Errorf("GNU time is needed for peak RSS (apt-get install time): %v", err)
	}
	work, err := os.MkdirTemp("", "shiplock-lint-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	started := time.Now().UTC()
	load0 := loadavg()

	bin := filepath.Join(work, "shiplock")
	build := exec.Command("go", "build", "-trimpath", "-tags", "nokube,nosqlite", "-ldflags", "-s -w", "-o", bin, "./cmd/shiplock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build shiplock: %v\n%s", err, out)
	}
	// The default build (no tags) links the Kubernetes client: its
	// start-up alone costs more memory than the whole lint of the slim
	// build, so both are measured.
	defBin := filepath.Join(work, "shiplock-default")
	build = exec.Command("go", "build", "-trimpath", "-o", defBin, "./cmd/shiplock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build shiplock (default): %v\n%s", err, out)
	}
	squawkVersion, _ := exec.Command(*squawk, "--version").Output()

	dir := filepath.Join(work, "migrations")
	noise, err := generate(dir, *files)
	if err != nil {
		return err
	}
	shiplockCmd := []string{bin, "lint", "--dir", dir, "--fail-on", "none", "-o", "json"}
	defaultCmd := append([]string{defBin}, shiplockCmd[1:]...)
	squawkCmd := []string{*squawk, "--reporter", "json", filepath.Join(dir, "*.sql")}

	// Untimed first runs (page cache, first exec), then alternate.
	for _, c := range [][]string{shiplockCmd, defaultCmd, squawkCmd} {
		if _, _, err := timed(work, c); err != nil {
			return err
		}
	}
	var ss, ds, qs, helpSlim, helpDef []sample
	var shipOut, squawkOut []byte
	for i := 0; i < *reps; i++ {
		order := [][]string{shiplockCmd, squawkCmd, defaultCmd, {bin, "--help"}, {defBin, "--help"}}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, c := range order {
			s, out, err := timed(work, c)
			if err != nil {
				return err
			}
			switch {
			case c[0] == bin && c[1] == "--help":
				helpSlim = append(helpSlim, s)
			case c[0] == defBin && c[1] == "--help":
				helpDef = append(helpDef, s)
			case c[0] == bin:
				ss, shipOut = append(ss, s), out
			case c[0] == defBin:
				ds = append(ds, s)
			default:
				qs, squawkOut = append(qs, s), out
			}
		}
	}
	shipF, err := shiplockFindings(shipOut)
	if err != nil {
		return err
	}
	sqF, err := squawkFindings(squawkOut)
	if err != nil {
		return err
	}
	shipNoise, sqNoise := noise.count(shipF, false), noise.count(sqF, true)

	cases, err := linttest.Read(filepath.Join("lint", "testdata", "labelled.sql"))
	if err != nil {
		return err
	}
	recall, err := labelled(work, *squawk, cases)
	if err != nil {
		return err
	}

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("### shiplock lint vs squawk (%s UTC)\n\n", started.Format("2006-01-02 15:04"))
	p("- set: %d generated goose files (each creates a table and a plain index on it, every 5th adds a column with a volatile default to an existing table, every 7th indexes an existing table; every Down drops what its Up made); %d timed runs of each tool, alternating; wall time and peak RSS from GNU time (`/usr/bin/time -f '%%e %%M'`)\n", *files, *reps)
	p("- shiplock: `shiplock lint --dir D --fail-on none -o json`, static binaries (%s): the slim build, `CGO_ENABLED=0 go build -trimpath -tags nokube,nosqlite -ldflags '-s -w'` (no Kubernetes client, no SQLite), in every row but the two marked default; the default build, `CGO_ENABLED=0 go build -trimpath ./cmd/shiplock`; squawk: %s native binary of the squawk-cli package, `squawk --reporter json 'D/*.sql'`\n", runtime.Version(), strings.TrimSpace(string(squawkVersion)))
	p("- machine: %d CPUs, load average before %s, after %s\n\n", runtime.NumCPU(), load0, loadavg())
	p("<!-- README table: begin -->\n")
	p("| %d goose files | shiplock lint | squawk |\n|---|---:|---:|\n", *files)
	p("| wall time, median (min–max) | %s | %s |\n", wallCell(ss), wallCell(qs))
	p("| peak RSS, median | %s | %s |\n", rssCell(ss), rssCell(qs))
	p("| peak RSS, median, default build | %s | |\n", rssCell(ds))
	p("| peak RSS of `shiplock --help` (start-up alone), slim / default build | %s / %s | |\n", rssCell(helpSlim), rssCell(helpDef))
	p("| findings | %d | %d |\n", len(shipF), len(sqF))
	p("| noise: DROP in a Down section | %d | %d |\n", shipNoise.down, sqNoise.down)
	p("| noise: plain index on a table created in the same file | %d | %d |\n", shipNoise.index, sqNoise.index)
	p("| labelled set, recall on the %d hazardous cases of the rules both have | %d/%d | %d/%d |\n", recall.hazards, recall.ship, recall.hazards, recall.squawk, recall.hazards)
	p("| labelled set, false positives on the %d safe cases of those rules | %d | %d |\n", recall.safes, recall.shipFP, recall.squawkFP)
	p("<!-- README table: end -->\n\n")
	p("Labelled set per rule (hazardous cases found by shiplock / squawk; false positives on safe cases):\n\n")
	p("| rule | hazardous | shiplock | squawk | safe | shiplock FP | squawk FP |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range recall.rows {
		p("| %s | %d | %d | %d | %d | %d | %d |\n", r.rule, r.hazards, r.ship, r.squawk, r.safes, r.shipFP, r.squawkFP)
	}
	p("\nA squawk false positive is a safe case on which squawk reports a rule mapped to the case's rule class (its other rules, such as prefer-robust-stmts, are not counted). Cases of shiplock's other rules (%d hazardous), which squawk does not have: shiplock found %d.\n", recall.otherHazards, recall.otherShip)
	p("\nRaw samples (wall s, peak RSS KiB): shiplock %v; squawk %v; shiplock default build %v; --help slim %v, default %v\n", ss, qs, ds, helpSlim, helpDef)
	fmt.Print(b.String())
	if *keep != "" {
		path := filepath.Join(*keep, "lint-"+started.Format("2006-01-02-1504")+".md")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return nil
}

func timed(dir string, argv []string) (sample, []byte, error) {
	tf := filepath.Join(dir, "time.out")
	cmd := exec.Command("/usr/bin/time", append([]string{"-o", tf, "-f", "%e %M"}, argv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	// squawk exits 1 when it has findings.
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1 && filepath.Base(argv[0]) == "squawk") {
		return sample{}, nil, fmt.Errorf("%s: %v\n%s", argv[0], err, errb.String())
	}
	data, err := os.ReadFile(tf)
	if err != nil {
		return sample{}, nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	var s sample
	s.Wall, _ = strconv.ParseFloat(f[0], 64)
	s.RSSKB, _ = strconv.ParseInt(f[1], 10, 64)
	return s, out.Bytes(), nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func wallCell(ss []sample) string {
	var w []float64
	for _, s := range ss {
		w = append(w, s.Wall)
	}
	sort.Float64s(w)
	return fmt.Sprintf("%.2f s (%.2f–%.2f)", median(w), w[0], w[len(w)-1])
}

func rssCell(ss []sample) string {
	var r []float64
	for _, s := range ss {
		r = append(r, float64(s.RSSKB))
	}
	return fmt.Sprintf("%.1f MiB", median(r)/1024)
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func shiplockFindings(out []byte) ([]finding, error) {
	var r struct {
		Findings []struct {
			File string `json:"file"`
			Line int    `json:"line"`
			Rule string `json:"rule"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("shiplock output: %v", err)
	}
	var fs []finding
	for _, f := range r.Findings {
		fs = append(fs, finding{filepath.Base(f.File), f.Line, f.Rule})
	}
	return fs, nil
}

// squawkFindings reads squawk's JSON report; its lines count from 0.
func squawkFindings(out []byte) ([]finding, error) {
	var r []struct {
		File string `json:"file"`
		Line int    `json:"line"`
		Rule string `json:"rule_name"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("squawk output: %v", err)
	}
	var fs []finding
	for _, f := range r {
		fs = append(fs, finding{filepath.Base(f.File), f.Line + 1, f.Rule})
	}
	return fs, nil
}
