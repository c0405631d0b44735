// Command bench measures shiplock against goose, golang-migrate, psql and a
// bare pgx connection, side by side in one run: fresh applies and no-op
// runs of generated migration sets, N runners started together on one empty
// database, and peak memory. It prints medians, ratios and the targets of
// issue 2, and writes JSON and Markdown into bench/out/.
//
// It is a program, not a test: nothing here runs under go test.
//
//	go run ./bench [--reps 5] [--sizes 1,100,1000] [--skip-peers]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	gooseVersion   = "v3.30.0"
	migrateVersion = "v4.20.1"
	// goose's CLI without the drivers the bench does not use; the tag
	// names are those of goose's cmd/goose/driver_*.go files.
	gooseTags   = "no_clickhouse no_libsql no_mssql no_azuresql no_mysql no_sqlite3 no_vertica no_ydb"
	migrateTags = "postgres"
)

type config struct {
	databaseURL string
	reps        int
	noopReps    int
	raceReps    int
	runners     int
	raceSize    int
	sizes       []int
	skipPeers   bool
	cache       string
	out         string
	keep        string
	rev         string
	shiplockBin string
	tags        string
	ldflags     string
	tools       map[string]bool // by flag name; nil: all
}

// toolFlags maps --tools names to tool names.
var toolFlags = map[string]string{
	"shiplock-file": toolShiplockFile,
	"shiplock-all":  toolShiplockAll,
	"goose":         toolGoose,
	"migrate":       toolMigrate,
	"psql":          toolPsql,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	b := &bench{cfg: cfg, log: os.Stderr}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string) (config, error) {
	var (
		cfg   config
		sizes string
		tools string
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&cfg.databaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"admin URL: the bench creates and drops its databases (named shiplock_bench_*) on this server")
	fs.IntVar(&cfg.reps, "reps", 5, "repetitions of every fresh apply and no-op run; medians are reported")
	fs.IntVar(&cfg.noopReps, "noop-reps", 1, "no-op runs of each tool per repetition (the pgx floor alternates with shiplock's): more paired samples on a noisy machine, without more fresh applies")
	fs.IntVar(&cfg.raceReps, "race-reps", 3, "trials of the N-runner start, each paired with a single run")
	fs.IntVar(&cfg.runners, "runners", 32, "processes started together in the N-runner start (0 skips it)")
	fs.IntVar(&cfg.raceSize, "race-size", 100, "migrations in the N-runner start's set")
	fs.StringVar(&sizes, "sizes", "1,100,1000", "comma-separated sizes of the generated migration sets")
	fs.StringVar(&tools, "tools", "", "comma-separated subset of shiplock-file,shiplock-all,goose,migrate,psql (default: all; the pgx floor runs with shiplock-file)")
	fs.BoolVar(&cfg.skipPeers, "skip-peers", false, "measure only shiplock and the floors (no goose, no golang-migrate)")
	fs.StringVar(&cfg.cache, "cache", filepath.Join(os.TempDir(), "shiplock-bench"),
		"work directory: peer binaries cached by version, builds, generated sets")
	fs.StringVar(&cfg.out, "out", "", "directory for results JSON and Markdown (default: bench/out in the module)")
	fs.StringVar(&cfg.keep, "keep", "", "also write the results as DIR/<date>.md and .json, for the repository to keep (bench/results: the README's figures come from there)")
	fs.StringVar(&cfg.rev, "shiplock-rev", "HEAD",
		`git revision of shiplock to build (exported with git archive), or "worktree" for the working tree as it is`)
	fs.StringVar(&cfg.tags, "shiplock-tags", "nokube,nosqlite", "build tags of the measured shiplock binary (the Dockerfile's: pods run a binary without the Kubernetes client and SQLite)")
	fs.StringVar(&cfg.ldflags, "shiplock-ldflags", "-s -w", "-ldflags of the measured shiplock binary (the Dockerfile's)")
	fs.StringVar(&cfg.shiplockBin, "shiplock-bin", "", "use this shiplock binary instead of building one")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("--sizes: %q is not a positive number", s)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if tools != "" {
		cfg.tools = map[string]bool{}
		for _, t := range strings.Split(tools, ",") {
			name, ok := toolFlags[strings.TrimSpace(t)]
			if !ok {
				return cfg, fmt.Errorf("--tools: unknown tool %q", t)
			}
			cfg.tools[name] = true
		}
	}
	if cfg.reps < 1 || cfg.raceReps < 1 || cfg.runners < 0 || cfg.raceSize < 1 {
		return cfg, fmt.Errorf("--reps, --race-reps and --race-size must be at least 1, --runners at least 0")
	}
	return cfg, nil
}

// tool is one measured program. fresh and noop build its command line for
// a set and a database URL; nil means the tool has no such run.
type tool struct {
	name  string
	vt    versionTable
	fresh func(s *migrationSet, url string) command
	noop  func(s *migrationSet, url string) command
}

func (b *bench) tools() []tool {
	sl := func(mode string) func(*migrationSet, string) command {
		return func(s *migrationSet, url string) command {
			return command{b.bins.shiplock, []string{"up", "--dir", s.gooseDir, "--database-url", url, "--tx-mode", mode}}
		}
	}
	goose := func(s *migrationSet, url string) command {
		return command{b.bins.goose, []string{"-dir", s.gooseDir, "postgres", url, "up"}}
	}
	migrate := func(s *migrationSet, url string) command {
		return command{b.bins.migrate, []string{"-path", s.migrateDir, "-database", url, "up"}}
	}
	psql := func(s *migrationSet, url string) command {
		return command{b.bins.psql, []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", s.allSQL, "-d", url}}
	}
	ts := []tool{
		{name: toolShiplockFile, vt: gooseTable, fresh: sl("file"), noop: sl("file")},
		{name: toolShiplockAll, vt: gooseTable, fresh: sl("all"), noop: sl("all")},
	}
	if !b.cfg.skipPeers {
		ts = append(ts,
			tool{name: toolGoose, vt: gooseTable, fresh: goose, noop: goose},
			tool{name: toolMigrate, vt: migrateTable, fresh: migrate, noop: migrate},
		)
	}
	ts = append(ts, tool{name: toolPsql, vt: noVersionTable, fresh: psql})
	if b.cfg.tools == nil {
		return ts
	}
	var sel []tool
	for _, t := range ts {
		if b.cfg.tools[t.name] {
			sel = append(sel, t)
		}
	}
	return sel
}

const (
	toolShiplockFile = "shiplock file"
	toolShiplockAll  = "shiplock all"
	toolGoose        = "goose"
	toolMigrate      = "migrate"
	toolPsql         = "psql -1"
	toolFloor        = "pgx floor"

	phaseFresh = "fresh"
	phaseNoop  = "noop"
)

type bench struct {
	cfg  config
	log  *os.File
	bins binaries
	// gnuTime is GNU time's path, for peak RSS; "" when missing.
	gnuTime string
	adm     *admin
	res     *results
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) run(ctx context.Context) error {
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if b.cfg.out == "" {
		b.cfg.out = filepath.Join(modRoot, "bench", "out")
	}
	b.res = newResults(b.cfg)
	if err := b.build(ctx, modRoot); err != nil {
		return err
	}
	b.adm, err = newAdmin(ctx, b.cfg.databaseURL, fmt.Sprintf("shiplock_bench_%d", os.Getpid()))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		b.adm.close(cctx)
	}()
	b.res.Env.Postgres = b.adm.serverVersion(ctx)
	if b.gnuTime = findGNUTime(ctx); b.gnuTime == "" {
		b.logf("GNU time not found (apt-get install time): peak RSS figures are upper bounds")
		b.res.Env.RSSUpperBound = true
	}
	b.res.Env.LoadBefore = loadAvg()

	b.warmUp(ctx)

	setsDir := filepath.Join(b.cfg.cache, "sets")
	for _, n := range b.cfg.sizes {
		s, err := generate(setsDir, n)
		if err != nil {
			return fmt.Errorf("generate %d migrations: %w", n, err)
		}
		if err := b.measureSize(ctx, s); err != nil {
			return err
		}
	}
	if b.cfg.runners > 0 {
		s, err := generate(setsDir, b.cfg.raceSize)
		if err != nil {
			return fmt.Errorf("generate %d migrations: %w", b.cfg.raceSize, err)
		}
		if err := b.measureRace(ctx, s); err != nil {
			return err
		}
	}
	b.res.Env.LoadAfter = loadAvg()
	b.res.evaluate()
	md := b.res.markdown()
	fmt.Print(md)
	paths, err := b.res.write(b.cfg.out)
	if err != nil {
		return err
	}
	b.logf("wrote %s", strings.Join(paths, ", "))
	return nil
}

// measureSize runs, reps times, every tool's fresh apply of s on a new
// database, then its no-op run on the database it just migrated. The
// order of the tools rotates between repetitions so that none always runs
// first or last; the databases of a round are dropped after the round,
// never right before a timed run.
func (b *bench) measureSize(ctx context.Context, s *migrationSet) error {
	tools := b.tools()
	b.logf("size %d: %d reps, load %s", s.n, b.cfg.reps, loadAvg())
	b.res.Env.Loads = append(b.res.Env.Loads, fmt.Sprintf("size %d: %s", s.n, loadAvg()))
	for rep := range b.cfg.reps {
		var dbs []string
		for i := range tools {
			t := tools[(i+rep)%len(tools)]
			name, url, err := b.adm.create(ctx)
			if err != nil {
				return err
			}
			dbs = append(dbs, name)

			r, err := t.fresh(s, url).runRSS(ctx, b.gnuTime, b.cfg.cache)
			if err != nil {
				return err
			}
			c, err := b.adm.inspect(ctx, url, t.vt)
			if err != nil {
				return fmt.Errorf("inspect %s after %s: %w", name, t.name, err)
			}
			ok, why := c.exactlyOnce(s.n, t.vt)
			b.res.add(t.name, phaseFresh, s.n, r, ok)
			b.logf("  %-14s fresh %5d  %8.1f ms  rss %6d KB  exit %d", t.name, s.n, ms(r.Wall), r.MaxRSSKB, r.ExitCode)
			if !r.ok() || !ok {
				b.logf("  %s fresh %d failed: %s\n%s", t.name, s.n, why, r.tail())
			}

			// The inspection above was this database's first connection
			// after the DDL, so the no-op does not pay for rebuilding the
			// relation cache init file (a pod would not either).
			if t.noop == nil {
				continue
			}
			for range max(b.cfg.noopReps, 1) {
				if err := b.measureNoop(ctx, t, s, url); err != nil {
					return err
				}
			}
		}
		if err := b.adm.drop(ctx, dbs...); err != nil {
			return err
		}
	}
	return nil
}

// measureNoop runs t's no-op on url, then, after shiplock, the pgx floor on
// the same database: the two alternate, so they see the same load.
func (b *bench) measureNoop(ctx context.Context, t tool, s *migrationSet, url string) error {
	r, err := t.noop(s, url).run(ctx)
	if err != nil {
		return err
	}
	b.res.add(t.name, phaseNoop, s.n, r, r.ok())
	b.logf("  %-14s noop  %5d  %8.1f ms  exit %d", t.name, s.n, ms(r.Wall), r.ExitCode)
	if !r.ok() {
		b.logf("  %s noop %d failed:\n%s", t.name, s.n, r.tail())
	}
	if t.name != toolShiplockFile {
		return nil
	}
	// The floor: connect and SELECT 1 on the same database.
	r, err = command{b.bins.floor, []string{url}}.run(ctx)
	if err != nil {
		return err
	}
	b.res.add(toolFloor, phaseNoop, s.n, r, r.ok())
	b.logf("  %-14s noop  %5d  %8.1f ms  exit %d", toolFloor, s.n, ms(r.Wall), r.ExitCode)
	if !r.ok() {
		b.logf("  floor failed:\n%s", r.tail())
	}
	return nil
}

// measureRace starts cfg.runners copies of each tool together on an empty
// database and checks the result; each trial is paired with a single run on
// another empty database, measured just before, for the ratio.
func (b *bench) measureRace(ctx context.Context, s *migrationSet) error {
	var tools []tool
	for _, t := range b.tools() {
		if t.name == toolShiplockFile || t.name == toolGoose || t.name == toolMigrate {
			tools = append(tools, t)
		}
	}
	b.logf("%d runners, %d migrations: %d trials, load %s", b.cfg.runners, s.n, b.cfg.raceReps, loadAvg())
	b.res.Env.Loads = append(b.res.Env.Loads, fmt.Sprintf("%d runners: %s", b.cfg.runners, loadAvg()))
	for trial := range b.cfg.raceReps {
		for i := range tools {
			t := tools[(i+trial)%len(tools)]
			single, singleURL, err := b.adm.create(ctx)
			if err != nil {
				return err
			}
			group, groupURL, err := b.adm.create(ctx)
			if err != nil {
				return err
			}
			r, err := t.fresh(s, singleURL).run(ctx)
			if err != nil {
				return err
			}
			if !r.ok() {
				b.logf("  %s single run failed:\n%s", t.name, r.tail())
			}
			wall, rs, err := t.fresh(s, groupURL).runGroup(ctx, b.cfg.runners)
			if err != nil {
				return err
			}
			c, err := b.adm.inspect(ctx, groupURL, t.vt)
			if err != nil {
				return fmt.Errorf("inspect %s after %d %s runners: %w", group, b.cfg.runners, t.name, err)
			}
			tr := b.res.addRace(t.name, s.n, b.cfg.runners, r, wall, rs, c)
			b.logf("  %-14s %d runners  %8.1f ms (single %7.1f ms)  failures %2d  exactly-once %v %s",
				t.name, b.cfg.runners, ms(wall), ms(r.Wall), tr.Failures, tr.ExactlyOnce, tr.Detail)
			for _, p := range rs {
				if !p.ok() {
					b.logf("    first failure (exit %d):\n%s", p.ExitCode, indent(p.tail()))
					break
				}
			}
			if err := b.adm.drop(ctx, single, group); err != nil {
				return err
			}
		}
	}
	return nil
}

// warmUp runs every binary once, untimed, so that the first measured run
// of a freshly built binary does not pay for loading it.
func (b *bench) warmUp(ctx context.Context) {
	admin := b.adm.base.String()
	cmds := []command{
		{b.bins.shiplock, []string{"version", "--help"}},
		{b.bins.floor, []string{admin}},
		{b.bins.psql, []string{"--version"}},
	}
	if !b.cfg.skipPeers {
		cmds = append(cmds, command{b.bins.goose, []string{"--version"}}, command{b.bins.migrate, []string{"-version"}})
	}
	for _, c := range cmds {
		for range 2 {
			if _, err := c.run(ctx); err != nil {
				b.logf("warm-up %s: %v", c.path, err)
			}
		}
	}
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(s, "\n", "\n      ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
