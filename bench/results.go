package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// sample is one measured process.
type sample struct {
	WallMS   float64 `json:"wall_ms"`
	CPUMS    float64 `json:"cpu_ms"`               // the client process's user + system time
	MaxRSSKB int64   `json:"max_rss_kb,omitempty"` // fresh applies only
	Exit     int     `json:"exit"`
	OK       bool    `json:"ok"` // exit 0 and, for a fresh apply, everything applied exactly once
}

// series is every sample of one tool, phase and set size.
type series struct {
	Tool    string   `json:"tool"`
	Phase   string   `json:"phase"`
	Size    int      `json:"size"`
	Samples []sample `json:"samples"`
}

func (s *series) okWalls() []float64 {
	var out []float64
	for _, x := range s.Samples {
		if x.OK {
			out = append(out, x.WallMS)
		}
	}
	return out
}

func (s *series) okCPUs() []float64 {
	var out []float64
	for _, x := range s.Samples {
		if x.OK {
			out = append(out, x.CPUMS)
		}
	}
	return out
}

func (s *series) failures() int { return len(s.Samples) - len(s.okWalls()) }

func (s *series) maxRSSKB() int64 {
	var m int64
	for _, x := range s.Samples {
		m = max(m, x.MaxRSSKB)
	}
	return m
}

// raceTrial is one start of N runners together.
type raceTrial struct {
	WallMS      float64     `json:"wall_ms"`
	SingleMS    float64     `json:"single_ms"` // a single run of the same set, just before
	SingleOK    bool        `json:"single_ok"`
	Failures    int         `json:"failures"` // runners with a non-zero exit
	ExitCodes   map[int]int `json:"exit_codes"`
	ExactlyOnce bool        `json:"exactly_once"`
	Detail      string      `json:"detail,omitempty"`
	Contents    contents    `json:"contents"`
}

type race struct {
	Tool    string      `json:"tool"`
	Size    int         `json:"size"`
	Runners int         `json:"runners"`
	Trials  []raceTrial `json:"trials"`
}

func (r *race) failures() int {
	n := 0
	for _, t := range r.Trials {
		n += t.Failures
	}
	return n
}

func (r *race) exactlyOnce() bool {
	for _, t := range r.Trials {
		if !t.ExactlyOnce {
			return false
		}
	}
	return len(r.Trials) > 0
}

func (r *race) medians() (group, single float64) {
	var g, s []float64
	for _, t := range r.Trials {
		g = append(g, t.WallMS)
		if t.SingleOK {
			s = append(s, t.SingleMS)
		}
	}
	return median(g), median(s)
}

type target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	// Pass is nil when the target could not be evaluated (a peer skipped,
	// a size not measured).
	Pass *bool `json:"pass"`
}

type binaryInfo struct {
	Source        string `json:"source"`
	Commit        string `json:"commit,omitempty"`
	Build         string `json:"build,omitempty"` // how the measured binary was built
	SizeBytes     int64  `json:"size_bytes"`
	Static        bool   `json:"static"`
	StaticDetail  string `json:"static_detail"`
	FullSizeBytes int64  `json:"full_size_bytes,omitempty"` // CGO_ENABLED=0 go build ./cmd/shiplock
	FullStatic    bool   `json:"full_static,omitempty"`
}

type envInfo struct {
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	CPUs       int       `json:"cpus"`
	GoVersion  string    `json:"go_version"`
	Postgres   string    `json:"postgres"`
	LoadBefore string    `json:"load_before"`
	LoadAfter  string    `json:"load_after"`
	// Loads are the load averages when each part started.
	Loads    []string `json:"loads"`
	Reps     int      `json:"reps"`
	RaceReps int      `json:"race_reps"`
	NoopReps int      `json:"noop_reps,omitempty"`
	Peers    []string `json:"peers,omitempty"`
	// RSSUpperBound: no GNU time, so peak RSS came from wait4 and
	// includes the bench's own RSS at fork.
	RSSUpperBound bool `json:"rss_upper_bound,omitempty"`
}

type results struct {
	Env     envInfo    `json:"env"`
	Binary  binaryInfo `json:"shiplock_binary"`
	Sizes   []int      `json:"sizes"`
	Series  []*series  `json:"series"`
	Races   []*race    `json:"races"`
	Targets []target   `json:"targets"`

	keepDir string // --keep: also write the results there
}

func newResults(cfg config) *results {
	r := &results{Sizes: cfg.sizes, Env: envInfo{
		Started: time.Now(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Reps: cfg.reps, RaceReps: cfg.raceReps, NoopReps: max(cfg.noopReps, 1),
	}, keepDir: cfg.keep}
	if !cfg.skipPeers {
		r.Env.Peers = []string{"goose " + gooseVersion + " (-tags " + gooseTags + ")", "migrate " + migrateVersion + " (-tags " + migrateTags + ")"}
	}
	return r
}

func (r *results) get(tool, phase string, size int) *series {
	for _, s := range r.Series {
		if s.Tool == tool && s.Phase == phase && s.Size == size {
			return s
		}
	}
	return nil
}

func (r *results) add(tool, phase string, size int, p procResult, ok bool) {
	s := r.get(tool, phase, size)
	if s == nil {
		s = &series{Tool: tool, Phase: phase, Size: size}
		r.Series = append(r.Series, s)
	}
	x := sample{WallMS: ms(p.Wall), CPUMS: ms(p.CPU), Exit: p.ExitCode, OK: ok && p.ok()}
	if phase == phaseFresh {
		x.MaxRSSKB = p.MaxRSSKB
	}
	s.Samples = append(s.Samples, x)
}

func (r *results) addRace(tool string, size, runners int, single procResult, wall time.Duration, rs []procResult, c contents) raceTrial {
	var rc *race
	for _, x := range r.Races {
		if x.Tool == tool {
			rc = x
		}
	}
	if rc == nil {
		rc = &race{Tool: tool, Size: size, Runners: runners}
		r.Races = append(r.Races, rc)
	}
	vt := gooseTable
	if tool == toolMigrate {
		vt = migrateTable
	}
	t := raceTrial{WallMS: ms(wall), SingleMS: ms(single.Wall), SingleOK: single.ok(), ExitCodes: map[int]int{}, Contents: c}
	for _, p := range rs {
		t.ExitCodes[p.ExitCode]++
		if !p.ok() {
			t.Failures++
		}
	}
	t.ExactlyOnce, t.Detail = c.exactlyOnce(size, vt)
	rc.Trials = append(rc.Trials, t)
	return t
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// med is the median wall time of a series' successful runs; 0 when there
// is none.
func (r *results) med(tool, phase string, size int) float64 {
	s := r.get(tool, phase, size)
	if s == nil {
		return 0
	}
	return median(s.okWalls())
}

// ratio is a/b of two medians; 0 when either is missing.
func (r *results) ratio(toolA, phaseA, toolB, phaseB string, size int) float64 {
	a, b := r.med(toolA, phaseA, size), r.med(toolB, phaseB, size)
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

// minRatio is a/b of the fastest successful runs: on a shared machine
// interference only ever adds time, so the minimums show the intrinsic
// difference when the medians are noisy.
func (r *results) minRatio(toolA, phaseA, toolB, phaseB string, size int) float64 {
	a, b := r.get(toolA, phaseA, size), r.get(toolB, phaseB, size)
	if a == nil || b == nil || len(a.okWalls()) == 0 || len(b.okWalls()) == 0 {
		return 0
	}
	return slices.Min(a.okWalls()) / slices.Min(b.okWalls())
}

func (r *results) race(tool string) *race {
	for _, x := range r.Races {
		if x.Tool == tool {
			return x
		}
	}
	return nil
}

func (r *results) hasSize(n int) bool { return slices.Contains(r.Sizes, n) }

func pass(b bool) *bool { return &b }

// evaluate checks the targets of issues 2 and 9. PASS/MISS is decided on the
// medians; the ratio of the fastest runs is shown beside them.
func (r *results) evaluate() {
	r.Env.Finished = time.Now()
	var ts []target
	add := func(name, measured string, p *bool) { ts = append(ts, target{name, measured, p}) }
	// cmp evaluates a ratio target a/b ≤ limit at size n.
	cmp := func(name, a, b, phase string, n int, limit float64) {
		x := r.ratio(a, phase, b, phase, n)
		if x == 0 {
			add(name, "not measured", nil)
			return
		}
		add(name, fmt.Sprintf("%.2f× (%.1f ms vs %.1f ms); fastest runs %.2f×", x,
			r.med(a, phase, n), r.med(b, phase, n), r.minRatio(a, phase, b, phase, n)), pass(x <= limit))
	}

	if r.hasSize(100) {
		cmp("no-op, 100 files: shiplock ≤ 1.3× pgx floor", toolShiplockFile, toolFloor, phaseNoop, 100, 1.3)
		name := "no-op, 100 files: shiplock below goose and migrate"
		sl, g, m := r.med(toolShiplockFile, phaseNoop, 100), r.med(toolGoose, phaseNoop, 100), r.med(toolMigrate, phaseNoop, 100)
		if sl > 0 && g > 0 && m > 0 {
			add(name, fmt.Sprintf("%.1f ms vs goose %.1f ms (%.2f×; fastest %.2f×), migrate %.1f ms (%.2f×; fastest %.2f×)",
				sl, g, sl/g, r.minRatio(toolShiplockFile, phaseNoop, toolGoose, phaseNoop, 100),
				m, sl/m, r.minRatio(toolShiplockFile, phaseNoop, toolMigrate, phaseNoop, 100)), pass(sl < g && sl < m))
		} else {
			add(name, "peers not measured", nil)
		}
	}
	if r.hasSize(1000) {
		// Issue 9: with goose's statement semantics (each statement its
		// own query) and only durable reports; 0.8× is the stretch goal.
		cmp("fresh 1000, file mode ≤ 0.9× goose", toolShiplockFile, toolGoose, phaseFresh, 1000, 0.9)
		cmp("fresh 1000, all mode ≤ 1.0× psql -1", toolShiplockAll, toolPsql, phaseFresh, 1000, 1.0)
		var rss int64
		for _, t := range []string{toolShiplockFile, toolShiplockAll} {
			if s := r.get(t, phaseFresh, 1000); s != nil {
				rss = max(rss, s.maxRSSKB())
			}
		}
		if rss > 0 {
			add("peak RSS, fresh 1000 (both modes) ≤ 15 MiB", fmt.Sprintf("%.1f MiB", float64(rss)/1024), pass(rss <= 15*1024))
		}
	}
	if rc := r.race(toolShiplockFile); rc != nil {
		g, s := rc.medians()
		name := fmt.Sprintf("%d runners, %d migrations: 0 failures, exactly-once, wall ≤ 1.3× single", rc.Runners, rc.Size)
		if s > 0 {
			x := g / s
			add(name, fmt.Sprintf("%d failed processes in %d trials, exactly-once %v, %.2f× (%.0f ms vs %.0f ms)",
				rc.failures(), len(rc.Trials), rc.exactlyOnce(), x, g, s), pass(rc.failures() == 0 && rc.exactlyOnce() && x <= 1.3))
		} else {
			add(name, "single run failed", pass(false))
		}
	}
	measured := fmt.Sprintf("measured binary: %s, %.1f MiB", r.Binary.StaticDetail, float64(r.Binary.SizeBytes)/(1<<20))
	ok := r.Binary.Static
	if r.Binary.FullSizeBytes > 0 {
		measured += fmt.Sprintf("; full binary (go build): static %v, %.1f MiB", r.Binary.FullStatic, float64(r.Binary.FullSizeBytes)/(1<<20))
		ok = ok && r.Binary.FullStatic
	}
	add("static binary (CGO_ENABLED=0)", measured, pass(ok))
	r.Targets = ts
}

var (
	freshTools = []string{toolShiplockFile, toolShiplockAll, toolGoose, toolMigrate, toolPsql}
	noopTools  = []string{toolShiplockFile, toolShiplockAll, toolGoose, toolMigrate, toolFloor}
)

func (r *results) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	e := r.Env
	p("## shiplock bench, %s\n\n", e.Started.Format("2006-01-02 15:04"))
	p("- machine: %d CPUs, load average (1/5/15 min) before %s, after %s; %s; PostgreSQL %s\n", e.CPUs, e.LoadBefore, e.LoadAfter, e.GoVersion, e.Postgres)
	if len(e.Loads) > 0 {
		p("- load average at the start of each part: %s\n", strings.Join(e.Loads, "; "))
	}
	p("- shiplock: %s", r.Binary.Source)
	if r.Binary.Build != "" {
		p(", built as pods run it: `%s`", r.Binary.Build)
	}
	p("; %.1f MiB, static: %v", float64(r.Binary.SizeBytes)/(1<<20), r.Binary.Static)
	if r.Binary.FullSizeBytes > 0 {
		p("; the full binary (`CGO_ENABLED=0 go build ./cmd/shiplock`) is %.1f MiB, static: %v", float64(r.Binary.FullSizeBytes)/(1<<20), r.Binary.FullStatic)
	}
	p("\n")
	if len(e.Peers) > 0 {
		p("- peers: %s\n", strings.Join(e.Peers, ", "))
	}
	p("- medians of %d repetitions (no-op runs: %d per repetition, shiplock's alternating with the pgx floor's), wall time of each process from fork to exit; runs that failed are left out and counted\n\n", e.Reps, max(e.NoopReps, 1))

	header := func(first string) {
		p("| %s |", first)
		for _, n := range r.Sizes {
			p(" %d |", n)
		}
		p("\n|---|")
		for range r.Sizes {
			p("---:|")
		}
		p("\n")
	}
	table := func(title, phase string, tools []string, values func(*series) []float64) {
		p("### %s\n\n", title)
		header("tool")
		for _, t := range tools {
			if r.get(t, phase, r.Sizes[0]) == nil {
				continue
			}
			p("| %s |", t)
			for _, n := range r.Sizes {
				s := r.get(t, phase, n)
				w := values(s)
				if len(w) == 0 {
					p(" failed |")
					continue
				}
				p(" %.1f (%.1f–%.1f)", median(w), slices.Min(w), slices.Max(w))
				if f := s.failures(); f > 0 {
					p(" %d failed", f)
				}
				p(" |")
			}
			p("\n")
		}
		p("\n")
	}
	wall, cpu := (*series).okWalls, (*series).okCPUs
	table("Fresh apply: wall ms, median (min–max)", phaseFresh, freshTools, wall)
	table("No-op run (everything applied): wall ms, median (min–max)", phaseNoop, noopTools, wall)
	table("Fresh apply: the client process's CPU ms (user+sys), median (min–max)", phaseFresh, freshTools, cpu)
	table("No-op run: the client process's CPU ms (user+sys), median (min–max)", phaseNoop, noopTools, cpu)

	p("### Ratios: of the medians (of the fastest runs)\n\n")
	header("ratio")
	ratios := []struct{ a, pa, b, pb string }{
		{toolShiplockFile, phaseFresh, toolGoose, phaseFresh},
		{toolShiplockFile, phaseFresh, toolMigrate, phaseFresh},
		{toolShiplockFile, phaseFresh, toolPsql, phaseFresh},
		{toolShiplockAll, phaseFresh, toolGoose, phaseFresh},
		{toolShiplockAll, phaseFresh, toolMigrate, phaseFresh},
		{toolShiplockAll, phaseFresh, toolPsql, phaseFresh},
		{toolShiplockFile, phaseNoop, toolFloor, phaseNoop},
		{toolShiplockAll, phaseNoop, toolFloor, phaseNoop},
		{toolShiplockFile, phaseNoop, toolGoose, phaseNoop},
		{toolShiplockFile, phaseNoop, toolMigrate, phaseNoop},
		{toolGoose, phaseNoop, toolFloor, phaseNoop},
		{toolMigrate, phaseNoop, toolFloor, phaseNoop},
	}
	for _, x := range ratios {
		if r.get(x.a, x.pa, r.Sizes[0]) == nil || r.get(x.b, x.pb, r.Sizes[0]) == nil {
			continue
		}
		p("| %s: %s / %s |", x.pa, x.a, x.b)
		for _, n := range r.Sizes {
			if v := r.ratio(x.a, x.pa, x.b, x.pb, n); v > 0 {
				p(" %.2f× (%.2f×) |", v, r.minRatio(x.a, x.pa, x.b, x.pb, n))
			} else {
				p(" – |")
			}
		}
		p("\n")
	}
	p("\n")

	p("### Peak RSS of the fresh apply (MiB, largest of the repetitions)\n\n")
	header("tool")
	for _, t := range freshTools {
		if r.get(t, phaseFresh, r.Sizes[0]) == nil {
			continue
		}
		p("| %s |", t)
		for _, n := range r.Sizes {
			p(" %.1f |", float64(r.get(t, phaseFresh, n).maxRSSKB())/1024)
		}
		p("\n")
	}
	p("\nMeasured with GNU time (%%M) around each process; psql's figure is the client only, the server does the work.")
	if e.RSSUpperBound {
		p(" **GNU time was missing: these are wait4 figures, which include the bench's own RSS at fork (upper bounds).**")
	}
	p("\n\n")

	if len(r.Races) > 0 {
		rc0 := r.Races[0]
		p("### %d runners started together on an empty database, %d migrations (%d trials)\n\n", rc0.Runners, rc0.Size, len(rc0.Trials))
		p("| tool | group wall, median ms | single run, median ms | ratio | failed processes | exactly-once | exit codes |\n")
		p("|---|---:|---:|---:|---:|---|---|\n")
		for _, rc := range r.Races {
			g, s := rc.medians()
			ratio := "–"
			if s > 0 {
				ratio = fmt.Sprintf("%.2f×", g/s)
			}
			codes := map[int]int{}
			okTrials := 0
			for _, t := range rc.Trials {
				for c, n := range t.ExitCodes {
					codes[c] += n
				}
				if t.ExactlyOnce {
					okTrials++
				}
			}
			p("| %s | %.1f | %.1f | %s | %d of %d | %d of %d trials | %s |\n", rc.Tool, g, s, ratio,
				rc.failures(), rc.Runners*len(rc.Trials), okTrials, len(rc.Trials), exitCodes(codes))
		}
		p("\n")
		for _, rc := range r.Races {
			for i, t := range rc.Trials {
				if !t.ExactlyOnce {
					p("- %s trial %d: %s\n", rc.Tool, i+1, t.Detail)
				}
			}
		}
		p("\n")
	}

	p("### README table\n\nThe README's Performance table, generated from this run (`go test ./bench` checks that README.md shows it unchanged):\n\n%s\n%s%s\n\n", readmeTableBegin, r.readmeTable(), readmeTableEnd)

	p("### Targets (issues 2 and 9)\n\n| target | measured | result |\n|---|---|---|\n")
	for _, t := range r.Targets {
		res := "n/a"
		if t.Pass != nil {
			res = map[bool]string{true: "PASS", false: "MISS"}[*t.Pass]
		}
		p("| %s | %s | %s |\n", t.Name, t.Measured, res)
	}
	p("\n")
	return b.String()
}

func exitCodes(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("exit %d: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// write stores the results as JSON and Markdown in dir, named by start
// time, and as latest.json / latest.md.
func (r *results) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	md := []byte(r.markdown())
	stamp := r.Env.Started.Format("20060102-150405")
	var paths []string
	for name, data := range map[string][]byte{
		"bench-" + stamp + ".json": js, "bench-" + stamp + ".md": md,
		"latest.json": js, "latest.md": md,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	if r.keepDir != "" {
		kept, err := r.keep(r.keepDir, md, js)
		if err != nil {
			return nil, err
		}
		paths = append(paths, kept...)
	}
	slices.Sort(paths)
	return paths, nil
}
