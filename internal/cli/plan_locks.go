package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/locktrace"
	"github.com/shiplock/shiplock/migrate"
)

// lockFlags are plan's --locks settings.
type lockFlags struct {
	on         bool
	shadowURL  string
	shadowTemp bool
	failOn     []string
	output     string
}

func (f *lockFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "locks", false, "trace what the pending migrations lock, rewrite and scan, on a scratch database (PostgreSQL)")
	fs.StringVar(&f.shadowURL, "shadow-url", "", "with --locks: the scratch database, empty or made by an earlier trace (receives the migrations)")
	fs.BoolVar(&f.shadowTemp, "shadow-temp", false, "with --locks: create a temporary scratch database on the target's server, drop it afterwards (needs CREATEDB)")
	fs.StringArrayVar(&f.failOn, "fail-on", nil, "with --locks: exit 3 when a statement holds `MODE[=ROWS]` or stronger while rewriting or scanning a table that large (repeatable)")
	fs.StringVarP(&f.output, "output", "o", "text", "with --locks: output format, text or json")
}

const planLocksHelp = `
With --locks, plan traces what the pending migrations would lock on
PostgreSQL: it replays the migration files up to the target's version on a
scratch database (--shadow-url, an empty database shiplock may write to),
then runs each pending file there in a transaction, statement by
statement, and reads after each statement the locks its backend holds, the
tables it rewrote (new storage) and the tables it read in full (a
constraint validated, an index built). Each pending file is committed on
the scratch database so the next one sees what it depends on. Every
finding is weighed by the target's own table sizes and activity; the
target is only read. Statements of a NO TRANSACTION file (CREATE INDEX
CONCURRENTLY) run on the scratch database untraced and are reported from
PostgreSQL's documentation.

--shadow-temp instead creates a temporary database on the target's own
server and drops it afterwards: it needs CREATEDB, and its DDL is
WAL-logged and replicated like any other.

--fail-on MODE[=ROWS] (repeatable) exits 3 when a statement holds MODE or
a stronger lock on a target table of at least ROWS estimated rows while it
rewrites or scans it: a lock held for a time that grows with the table.
A table never analyzed counts as large.

Examples:
  shiplock plan --locks --shadow-url postgres://ci@127.0.0.1/scratch
  shiplock plan --locks --shadow-temp -o json
  shiplock plan --locks --shadow-url "$SCRATCH_URL" --fail-on 'ACCESS EXCLUSIVE=100000' --fail-on 'SHARE=1000000'`

var errLocksPostgresOnly = usagef("plan --locks traces PostgreSQL migrations only: it reads PostgreSQL's lock table (pg_locks); on MySQL and SQLite use plan without --locks")

// runLocks traces the pending migrations of an up (plan --locks).
func (f *lockFlags) run(ctx context.Context, g *globals, m *migrate.Migrator, db *sql.DB, t target, to int64) error {
	if t.dialect != "postgres" {
		return errLocksPostgresOnly
	}
	if (f.shadowURL == "") == !f.shadowTemp {
		return usagef("plan --locks needs a scratch database: --shadow-url URL (an empty database shiplock may write to) or --shadow-temp (a temporary database on the target's server)")
	}
	var limits []locktrace.Threshold
	for _, s := range f.failOn {
		th, err := locktrace.ParseThreshold(s)
		if err != nil {
			return usagef("--fail-on: " + err.Error())
		}
		limits = append(limits, th)
	}
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	pending, err := m.Plan(ctx, migrate.Up, migrate.UpOptions{To: to}, -1)
	if err != nil {
		return err
	}
	shadow, cleanup, err := f.openShadow(ctx, g, db, t)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := locktrace.Trace(ctx, db, shadow, m.Migrations(), st.Current, pending, locktrace.Options{Dialect: postgres.Dialect{Table: g.table}, Logger: g.log})
	if rep != nil {
		for _, w := range rep.Warnings {
			g.log.Warn(w)
		}
		if f.output == "json" {
			writeJSON(g.streams.Out, rep)
		} else {
			writeLockReport(g.streams.Out, g, rep)
		}
	}
	if err != nil {
		return err
	}
	var over []string
	statements := 0
	for _, s := range rep.Steps {
		n := len(over)
		for _, l := range s.Locks {
			for _, th := range limits {
				if th.Exceeds(l) {
					over = append(over, fmt.Sprintf("%s:%d %s on %s", s.File, s.Line, l.Mode, l.Relation))
					break
				}
			}
		}
		if len(over) > n {
			statements++
		}
	}
	if len(over) > 0 {
		return &exitError{code: exitcode.BadFile, msg: fmt.Sprintf("--fail-on: %s a lock on a large table for a time that grows with it: %s",
			map[bool]string{true: "1 statement holds", false: fmt.Sprintf("%d statements hold", statements)}[statements == 1], strings.Join(over, "; "))}
	}
	return nil
}

// openShadow opens the scratch database: --shadow-url, or a temporary
// database created on the target's server (dropped by cleanup).
func (f *lockFlags) openShadow(ctx context.Context, g *globals, db *sql.DB, t target) (*sql.DB, func(), error) {
	if f.shadowURL != "" {
		st, err := g.parsePostgres(f.shadowURL)
		if err != nil {
			return nil, nil, err
		}
		shadow := postgres.OpenConfig(st.pg)
		return shadow, func() { shadow.Close() }, nil
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "shiplock_scratch_" + hex.EncodeToString(b)
	g.log.Warn("creating a temporary scratch database on the target's server: it needs CREATEDB, and its DDL is WAL-logged and replicated", "database", name)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, nil, fmt.Errorf("--shadow-temp: create the scratch database: %w", err)
	}
	cfg := t.pg.Copy()
	cfg.Database = name
	shadow := postgres.OpenConfig(cfg)
	return shadow, func() {
		shadow.Close()
		// A fresh context: the run's may be canceled already.
		if _, err := db.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			g.log.Warn("could not drop the temporary scratch database: drop it by hand", "database", name, "error", err)
		}
	}, nil
}

// writeLockReport prints one paragraph per statement that takes a lock on
// a relation the target has, or that was not traced.
func writeLockReport(w io.Writer, g *globals, rep *locktrace.Report) {
	fmt.Fprintf(w, "-- lock trace of %s, target at version %d\n", plural(countFiles(rep), "pending migration"), rep.TargetVersion)
	quiet := 0
	for _, s := range rep.Steps {
		var lines []string
		for _, l := range s.Locks {
			if l.Target == nil {
				continue // new in this release: nobody else uses it yet
			}
			if l.Mode < locktrace.ShareUpdateExclusive && !l.Rewrite && !l.Scan {
				continue // plain reads and writes: only DDL waits for them
			}
			lines = append(lines, lockSentence(s, l))
		}
		if len(lines) == 0 && s.Note == "" {
			quiet++
			continue
		}
		fmt.Fprintf(w, "\nstatement %d (%s:%d): %s\n", s.Index, s.File, s.Line, firstLine(g.redact(s.SQL)))
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
		if s.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", s.Note)
		}
	}
	switch quiet {
	case 0:
	case 1:
		fmt.Fprintln(w, "\n1 other statement takes no new lock that blocks reads or writes of the target's tables")
	default:
		fmt.Fprintf(w, "\n%d other statements take no new lock that blocks reads or writes of the target's tables\n", quiet)
	}
}

// lockSentence says what one lock costs on the target: "takes ACCESS
// EXCLUSIVE on accounts (≈ 48 M rows, 6.1 GB) and rewrites it: reads and
// writes block for the whole rewrite".
func lockSentence(s locktrace.Step, l locktrace.Lock) string {
	t := l.Target
	rows := "size unknown: never analyzed"
	if t.Rows >= 0 {
		rows = "≈ " + humanCount(t.Rows) + " rows"
	}
	size := fmt.Sprintf("%s, %s", rows, humanBytes(t.Bytes))
	if t.Kind != "table" {
		size = t.Kind + ", " + size
	}
	if t.Writes > 0 || t.SeqScans+t.IdxScans > 0 {
		size += fmt.Sprintf("; %s, %s written since the statistics were reset", plural(int(t.SeqScans+t.IdxScans), "scan"), plural(int(t.Writes), "row"))
	}
	verb := "takes"
	switch {
	case !s.Traced:
		verb = "takes (documented)"
	case l.Since > 0:
		verb = fmt.Sprintf("holds (since statement %d)", l.Since)
	}
	what, how := "", "briefly (a catalog change), but it waits behind running transactions and everything after it waits too"
	switch {
	case l.Rewrite:
		what, how = " and rewrites it", "for the whole rewrite"
	case l.Scan:
		what, how = " and reads it in full", "for the whole scan"
	}
	return fmt.Sprintf("%s %s on %s (%s)%s: %s %s", verb, l.Mode, l.Relation, size, what, blocks(l.Mode), how)
}

// blocks says what a lock of mode m on a table stops others from doing.
func blocks(m locktrace.Mode) string {
	switch {
	case m == locktrace.AccessExclusive:
		return "reads and writes block"
	case m >= locktrace.Share:
		return "writes block (reads pass)"
	case m == locktrace.ShareUpdateExclusive:
		return "reads and writes pass, other DDL and VACUUM block"
	default:
		return "only DDL blocks"
	}
}

func countFiles(rep *locktrace.Report) int {
	n, last := 0, int64(-1)
	for _, s := range rep.Steps {
		if s.Version != last {
			n, last = n+1, s.Version
		}
	}
	return n
}

func firstLine(s string) string {
	line, _, more := strings.Cut(s, "\n")
	if more {
		line += " ..."
	}
	return line
}

func humanCount(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f G", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f M", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.0f k", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "kMGTPE"[exp])
}
