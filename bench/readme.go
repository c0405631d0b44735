package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The README's Performance table is generated here, from one run's
// results, and kept in the result file between these markers; a test
// (readme_test.go) checks that README.md shows exactly the table of the
// result file it names, so no figure in the README comes from anywhere
// else.
const (
	readmeTableBegin = "<!-- README table: begin -->"
	readmeTableEnd   = "<!-- README table: end -->"
)

// readmeTable renders the README's Performance table; what this run did
// not measure shows as "–".
func (r *results) readmeTable() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cell := func(tool, phase string, n int, format string) string {
		if v := r.med(tool, phase, n); v > 0 {
			return fmt.Sprintf(format, v)
		}
		return "–"
	}
	rss := func(tool string) string {
		if s := r.get(tool, phaseFresh, 1000); s != nil && s.maxRSSKB() > 0 {
			return fmt.Sprintf("%.1f MiB", float64(s.maxRSSKB())/1024)
		}
		return "–"
	}
	race := func(tool string) string {
		rc := r.race(tool)
		if rc == nil {
			return "–"
		}
		g, s := rc.medians()
		if f := rc.failures(); f > 0 {
			return fmt.Sprintf("%d of %d runners fail", f, rc.Runners*len(rc.Trials))
		}
		once := "exactly once"
		if !rc.exactlyOnce() {
			once = "**not exactly once**"
		}
		if s > 0 {
			return fmt.Sprintf("0 failures, %s, %.2f× a single run", once, g/s)
		}
		return "0 failures, " + once
	}
	tools := []string{toolShiplockFile, toolShiplockAll, toolGoose, toolMigrate}
	p("| | shiplock (file) | shiplock (all) | goose %s | golang-migrate %s | floor |\n", gooseVersion, migrateVersion)
	p("|---|---:|---:|---:|---:|---:|\n")
	row := func(title, phase string, n int, format, floor string) {
		p("| %s |", title)
		for _, t := range tools {
			p(" %s |", cell(t, phase, n, format))
		}
		p(" %s |\n", floor)
	}
	row("fresh apply, 1000 migrations", phaseFresh, 1000, "%.0f ms", "psql -1: "+cell(toolPsql, phaseFresh, 1000, "%.0f ms"))
	row("no-op, 100 migrations", phaseNoop, 100, "%.1f ms", "pgx connect + SELECT 1: "+cell(toolFloor, phaseNoop, 100, "%.1f ms"))
	row("no-op, 1000 migrations", phaseNoop, 1000, "%.1f ms", cell(toolFloor, phaseNoop, 1000, "%.1f ms"))
	p("| peak RSS, 1000-migration apply |")
	for _, t := range tools {
		p(" %s |", rss(t))
	}
	p(" |\n")
	runners := 32
	if len(r.Races) > 0 {
		runners = r.Races[0].Runners
	}
	p("| %d runners at once, 100 migrations | %s | | %s | %s | |\n", runners, race(toolShiplockFile), race(toolGoose), race(toolMigrate))
	return b.String()
}

// keep copies the run's Markdown and JSON into dir (bench/results), the
// figures the repository keeps and the README quotes.
func (r *results) keep(dir string, md, js []byte) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	stamp := r.Env.Started.UTC().Format("2006-01-02-1504")
	var paths []string
	for ext, data := range map[string][]byte{".md": md, ".json": js} {
		p := filepath.Join(dir, stamp+ext)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
