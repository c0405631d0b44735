// Package locktrace traces what pending PostgreSQL migrations would lock,
// rewrite and scan, by running them on a scratch database, and weighs each
// finding by the size and activity of the target's tables.
//
// The scratch ("shadow") database is built by replaying the migration files
// up to the target's version, so the pending files meet the schema they were
// written for. Each pending file then runs in its own transaction, one
// statement at a time; after every statement the tracer reads, on its own
// backend, the relation locks it holds (pg_locks), the relations whose
// storage was replaced (pg_class.relfilenode: a rewrite) and the tables it
// read in full (pg_stat_xact_user_tables.seq_scan: a validation scan or an
// index build). The file is committed on the scratch database, so the next
// one sees what it depends on. The target is only read: its catalog and
// statistics say how long each lock would be held there.
//
// What no transaction can show is reported from PostgreSQL's documentation:
// a statement of a NO TRANSACTION file (CREATE INDEX CONCURRENTLY, ...) runs
// on the scratch database outside a transaction, untraced.
package locktrace

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/migrate"
)

// Mode is a PostgreSQL table lock mode, weakest first.
type Mode int

const (
	NoLock Mode = iota
	AccessShare
	RowShare
	RowExclusive
	ShareUpdateExclusive
	Share
	ShareRowExclusive
	Exclusive
	AccessExclusive
)

var modeNames = [...]string{"", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}

// String is the mode as PostgreSQL's documentation writes it.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// MarshalText writes the documentation's spelling.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// ParseMode reads a lock mode as pg_locks writes it (AccessExclusiveLock),
// as the documentation does (ACCESS EXCLUSIVE) or in kebab case
// (access-exclusive).
func ParseMode(s string) (Mode, error) {
	key := strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.ToLower(s))
	key = strings.TrimSuffix(key, "lock")
	for m := AccessShare; m <= AccessExclusive; m++ {
		if strings.ReplaceAll(strings.ToLower(m.String()), " ", "") == key {
			return m, nil
		}
	}
	return NoLock, fmt.Errorf("unknown lock mode %q (want one of ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE, SHARE UPDATE EXCLUSIVE, SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE)", s)
}

// Table is what the target says of one relation. Rows is PostgreSQL's
// estimate (pg_class.reltuples), -1 when the table was never analyzed.
type Table struct {
	Name  string  `json:"name"` // schema.name
	Kind  string  `json:"kind"` // table, index, materialized view, partitioned table
	Rows  float64 `json:"rows"`
	Bytes int64   `json:"bytes"`
	// Activity since the statistics were last reset (tables only).
	SeqScans int64 `json:"seq_scans"`
	IdxScans int64 `json:"idx_scans"`
	Writes   int64 `json:"writes"` // rows inserted, updated and deleted
}

// Lock is a relation lock a statement took.
type Lock struct {
	Relation string `json:"relation"` // schema.name
	Mode     Mode   `json:"mode"`
	// Rewrite: the statement replaced the relation's storage (a new
	// relfilenode): it copied every row under this lock.
	Rewrite bool `json:"rewrite,omitempty"`
	// Scan: the statement read the whole table (validating a constraint,
	// building an index) under this lock.
	Scan bool `json:"scan,omitempty"`
	// Since is the statement (1-based, in its file) that took Mode when an
	// earlier one did: the lock is held until the file's transaction ends.
	Since int `json:"since,omitempty"`
	// Target is the relation in the target database; nil when it does not
	// exist there (created by this release: nobody else uses it yet).
	Target *Table `json:"target,omitempty"`
}

// Step is one statement of a pending migration.
type Step struct {
	Version int64  `json:"version"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Index   int    `json:"statement"` // 1-based, in its file
	SQL     string `json:"sql"`
	// Traced is false for a statement that runs outside a transaction:
	// Locks then come from PostgreSQL's documentation (Note says which).
	Traced bool   `json:"traced"`
	Locks  []Lock `json:"locks"`
	Note   string `json:"note,omitempty"`
}

// Report is the trace of every pending migration.
type Report struct {
	TargetVersion int64    `json:"target_version"`
	Steps         []Step   `json:"steps"`
	Warnings      []string `json:"warnings,omitempty"`
}

// Options are the trace's settings.
type Options struct {
	// Dialect writes the scratch database's bookkeeping (postgres).
	Dialect dialect.Dialect
	// Logger receives progress; nil: none.
	Logger *slog.Logger
}

// ErrNotScratch is returned when the scratch database holds tables that
// shiplock did not put there, or is the target itself.
var ErrNotScratch = errors.New("not a scratch database")

// scratchMarker is the table that says "shiplock built this database to
// trace migrations": tracing commits migrations, so it never runs on a
// database that does not carry it (or is empty).
const scratchMarker = "shiplock_scratch"

// Trace replays all migrations up to the target's version on shadow, then
// traces the pending ones (pending, in order) statement by statement,
// weighing each lock by the target's tables. target is only read.
func Trace(ctx context.Context, target, shadow *sql.DB, all []*migrate.Migration, targetVersion int64, pending []*migrate.Migration, o Options) (*Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	user := userRelations(o.Dialect)
	if err := claimScratch(ctx, target, shadow, user); err != nil {
		return nil, err
	}
	shadowVersion, err := replay(ctx, shadow, all, targetVersion, o)
	if err != nil {
		return nil, err
	}
	rep := &Report{TargetVersion: targetVersion}
	tables, err := readTables(ctx, target, user)
	if err != nil {
		return nil, fmt.Errorf("read the target's tables: %w", err)
	}
	if diff, err := compareCatalogs(ctx, target, shadow, user); err != nil {
		return nil, err
	} else if diff != "" {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the scratch database, replayed to version %d, differs from the target: %s; locks on what differs may be missing or wrong", shadowVersion, diff))
	}
	conn, err := shadow.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("scratch database: %w", err)
	}
	defer conn.Close()
	for _, mig := range pending {
		o.Logger.Info("tracing", "version", mig.Version, "file", mig.Source)
		steps, err := traceMigration(ctx, conn, mig, tables, user, o)
		rep.Steps = append(rep.Steps, steps...)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// claimScratch makes sure shadow may receive migrations: it is empty (then
// it gets the marker) or carries the marker, and it is not the target.
func claimScratch(ctx context.Context, target, shadow *sql.DB, user string) error {
	var marked bool
	if err := shadow.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, scratchMarker).Scan(&marked); err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	if !marked {
		var n int
		err := shadow.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE `+user+` AND c.relkind IN ('r','p','v','m','S','f')`).Scan(&n)
		if err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: the scratch database holds %d tables, views or sequences that shiplock did not create; give an empty database (its migrations are committed there)", ErrNotScratch, n)
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		_, err = shadow.ExecContext(ctx, `CREATE TABLE `+scratchMarker+` (token text NOT NULL);
			COMMENT ON TABLE `+scratchMarker+` IS 'made by shiplock plan --locks: a scratch database that receives migrations';
			INSERT INTO `+scratchMarker+` VALUES ('`+hex.EncodeToString(b)+`')`)
		if err != nil {
			return fmt.Errorf("scratch database: mark it: %w", err)
		}
	}
	// The same database behind two URLs would see the same token.
	var token string
	if err := shadow.QueryRowContext(ctx, `SELECT token FROM `+scratchMarker).Scan(&token); err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	var same bool
	err := target.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL AND EXISTS (SELECT 1 FROM `+scratchMarker+` WHERE token = $2)`, scratchMarker, token).Scan(&same)
	if err != nil {
		// to_regclass is false, so the EXISTS is never planned... unless
		// the table exists: then the error is real.
		var exists bool
		if e := target.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, scratchMarker).Scan(&exists); e != nil || exists {
			return fmt.Errorf("target: %w", err)
		}
	}
	if same {
		return fmt.Errorf("%w: the scratch database is the target itself; give another database", ErrNotScratch)
	}
	return nil
}

// replay brings shadow to targetVersion with shiplock's own engine and
// returns the version it reached. A scratch database ahead of the target
// (it traced a newer release) cannot be used again.
func replay(ctx context.Context, shadow *sql.DB, all []*migrate.Migration, targetVersion int64, o Options) (int64, error) {
	m := migrate.New(shadow, o.Dialect, all, migrate.Options{Logger: o.Logger})
	st, err := m.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("scratch database: %w", err)
	}
	if st.Current > targetVersion {
		return 0, fmt.Errorf("%w: the scratch database is at version %d, ahead of the target's %d (an earlier trace committed newer migrations there): drop and recreate it", ErrNotScratch, st.Current, targetVersion)
	}
	if targetVersion == 0 {
		// Nothing to replay; the bookkeeping tables are still needed
		// to record what the trace commits.
		err := inTx(ctx, shadow, func(tx *sql.Tx) error {
			versions, records, err := o.Dialect.TablesExist(ctx, tx)
			if err == nil && !versions {
				err = o.Dialect.CreateVersionTable(ctx, tx)
			}
			if err == nil && !records {
				err = o.Dialect.EnsureRecordTable(ctx, tx)
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("scratch database: %w", err)
		}
		return st.Current, nil
	}
	res, err := m.Up(ctx, migrate.UpOptions{To: targetVersion})
	if err != nil {
		return 0, fmt.Errorf("scratch database: replay the migrations up to version %d: %w", targetVersion, err)
	}
	return res.To, nil
}

// userRelations is the SQL condition on c (pg_class) and n (pg_namespace)
// that selects the relations of the application: not the system catalogs,
// not TOAST tables, not goose's and shiplock's bookkeeping tables (named as
// d's version table is) nor their indexes (a target goose migrated has no
// shiplock_versions).
func userRelations(d dialect.Dialect) string {
	fold := func(id dialect.Ident) string { // as PostgreSQL stores the name
		if id.Quoted {
			return id.Text
		}
		return strings.ToLower(id.Text)
	}
	t := d.VersionTable()
	names := []string{fold(t.Name()), fold(t.Name()) + "_id_seq", fold(t.Records()), scratchMarker}
	for i, n := range names {
		names[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
	AND coalesce((SELECT t.relname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid WHERE i.indexrelid = c.oid), c.relname) NOT IN (` + strings.Join(names, ", ") + `)`
}

var relkinds = map[string]string{"r": "table", "p": "partitioned table", "i": "index", "I": "partitioned index", "m": "materialized view", "S": "sequence", "t": "TOAST table", "v": "view", "f": "foreign table"}

// readTables reads the target's relations: size, estimated rows, activity.
func readTables(ctx context.Context, target *sql.DB, user string) (map[string]*Table, error) {
	rows, err := target.QueryContext(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind::text, c.reltuples::float8,
			pg_table_size(c.oid), coalesce(s.seq_scan, 0), coalesce(s.idx_scan, 0), coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE `+user+` AND c.relkind IN ('r','p','i','I','m')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*Table{}
	for rows.Next() {
		var t Table
		var kind string
		if err := rows.Scan(&t.Name, &kind, &t.Rows, &t.Bytes, &t.SeqScans, &t.IdxScans, &t.Writes); err != nil {
			return nil, err
		}
		t.Kind = relkinds[kind]
		out[t.Name] = &t
	}
	return out, rows.Err()
}

// compareCatalogs says how the scratch database's columns differ from the
// target's ("" when they agree): a replay that does not rebuild the target
// (objects made by hand, a migration that depends on data) traces another
// schema.
func compareCatalogs(ctx context.Context, target, shadow *sql.DB, user string) (string, error) {
	read := func(db *sql.DB) (map[string]bool, error) {
		rows, err := db.QueryContext(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || coalesce('.' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
			WHERE `+user+` AND c.relkind IN ('r','p','i','I','m','v','S')`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		set := map[string]bool{}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return nil, err
			}
			set[s] = true
		}
		return set, rows.Err()
	}
	t, err := read(target)
	if err != nil {
		return "", fmt.Errorf("read the target's catalog: %w", err)
	}
	s, err := read(shadow)
	if err != nil {
		return "", fmt.Errorf("read the scratch database's catalog: %w", err)
	}
	only := func(a, b map[string]bool) []string {
		var out []string
		for k := range a {
			if !b[k] {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	var parts []string
	for _, d := range []struct {
		where string
		list  []string
	}{{"only in the target", only(t, s)}, {"only in the scratch database", only(s, t)}} {
		if len(d.list) == 0 {
			continue
		}
		shown := d.list
		if len(shown) > 5 {
			shown = shown[:5]
		}
		more := ""
		if len(d.list) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(d.list)-len(shown))
		}
		parts = append(parts, fmt.Sprintf("%s: %s%s", d.where, strings.Join(shown, ", "), more))
	}
	return strings.Join(parts, "; "), nil
}

// relation is a relation of the scratch database as one statement found it.
type relation struct {
	name     string
	table    bool // a table or materialized view, not an index
	filenode int64
	seqScans int64
}

// snapshot reads, on the tracing backend, every user relation with its
// storage and this transaction's scan count, and the locks held.
func snapshot(ctx context.Context, q dialect.Querier, user string) (map[int64]relation, map[int64]Mode, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind::text, c.relfilenode::int8,
			coalesce(pg_stat_get_xact_numscans(c.oid), 0),
			(SELECT string_agg(l.mode, ',') FROM pg_locks l WHERE l.locktype = 'relation' AND l.relation = c.oid AND l.pid = pg_backend_pid() AND l.granted)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+user+` AND c.relkind IN ('r','p','i','I','m')`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	rels, locks := map[int64]relation{}, map[int64]Mode{}
	for rows.Next() {
		var oid int64
		var r relation
		var modes sql.NullString
		var kind string
		if err := rows.Scan(&oid, &r.name, &kind, &r.filenode, &r.seqScans, &modes); err != nil {
			return nil, nil, err
		}
		r.table = kind == "r" || kind == "p" || kind == "m"
		rels[oid] = r
		for _, s := range strings.Split(modes.String, ",") {
			if m, err := ParseMode(s); err == nil && m > locks[oid] {
				locks[oid] = m
			}
		}
	}
	return rels, locks, rows.Err()
}

// traceMigration runs one pending migration on the scratch database and
// returns a step per statement: a transactional file in one transaction,
// a NO TRANSACTION file a transaction per statement (as each commits on
// its own there), except the statements PostgreSQL refuses to run in one.
func traceMigration(ctx context.Context, conn *sql.Conn, mig *migrate.Migration, tables map[string]*Table, user string, o Options) ([]Step, error) {
	if mig.Kind != migrate.KindSQL {
		return []Step{{Version: mig.Version, File: mig.Source, Note: "Go migration: not traced", Locks: []Lock{}}}, fmt.Errorf("%s: a Go migration cannot be traced; the trace stops before it", mig.Source)
	}
	stmts := mig.Statements(migrate.Up)
	steps := make([]Step, 0, len(stmts))
	record := dialect.Record{Version: mig.Version, Source: mig.Source, Checksum: mig.Checksum, State: dialect.StateApplied}
	var tr *tracer
	for i, s := range stmts {
		step := Step{Version: mig.Version, File: mig.Source, Line: s.Line, Index: i + 1, SQL: s.SQL, Traced: true, Locks: []Lock{}}
		fail := func(err error) ([]Step, error) {
			return append(steps, step), fmt.Errorf("%s:%d: on the scratch database: %w", mig.Source, s.Line, err)
		}
		if tr == nil {
			var err error
			if tr, err = begin(ctx, conn, tables, user); err != nil {
				return fail(err)
			}
			defer tr.tx.Rollback()
		}
		err := tr.run(ctx, &step, s.SQL)
		if mig.NoTx && isTxBlockError(err) {
			// CREATE INDEX CONCURRENTLY, VACUUM ...: run on its own,
			// described from the documentation.
			tr.tx.Rollback()
			tr = nil
			step.Traced = false
			step.Locks, step.Note = documented(ctx, conn, s.SQL)
			for j := range step.Locks {
				step.Locks[j].Target = tables[step.Locks[j].Relation]
			}
			_, err = conn.ExecContext(ctx, s.SQL)
		}
		if err != nil {
			return fail(err)
		}
		steps = append(steps, step)
		if mig.NoTx && tr != nil {
			if err := tr.tx.Commit(); err != nil {
				return fail(err)
			}
			tr = nil
		}
	}
	if tr == nil {
		if err := dialect.MarkApplied(ctx, o.Dialect, conn, record); err != nil {
			return steps, fmt.Errorf("%s: record it on the scratch database: %w", mig.Source, err)
		}
		return steps, nil
	}
	if err := dialect.MarkApplied(ctx, o.Dialect, tr.tx, record); err != nil {
		return steps, fmt.Errorf("%s: record it on the scratch database: %w", mig.Source, err)
	}
	return steps, tr.tx.Commit()
}

// isTxBlockError reports PostgreSQL's "cannot run inside a transaction
// block" (25001).
func isTxBlockError(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "25001"
}

// tracer is one transaction on the scratch database and what its
// statements have locked so far.
type tracer struct {
	tx     *sql.Tx
	user   string // userRelations
	tables map[string]*Table
	rels   map[int64]relation
	held   map[int64]Mode
	since  map[int64]int // relation -> the statement that took its lock
}

func begin(ctx context.Context, conn *sql.Conn, tables map[string]*Table, user string) (*tracer, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	rels, held, err := snapshot(ctx, tx, user)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return &tracer{tx: tx, user: user, tables: tables, rels: rels, held: held, since: map[int64]int{}}, nil
}

// run executes one statement and adds to step the locks it took, and the
// rewrites and scans it did under them.
func (t *tracer) run(ctx context.Context, step *Step, stmt string) error {
	if _, err := t.tx.ExecContext(ctx, stmt); err != nil {
		return err
	}
	after, locks, err := snapshot(ctx, t.tx, t.user)
	if err != nil {
		return err
	}
	for oid, mode := range locks {
		before, existed := t.rels[oid]
		if !existed {
			continue // made by this statement: nobody else uses it
		}
		now := after[oid]
		l := Lock{Relation: now.name, Mode: mode, Rewrite: now.filenode != before.filenode && now.filenode != 0}
		// A rewrite reads the table too; Scan is a full read alone (an
		// index's count is of lookups, not a read of the whole table).
		l.Scan = !l.Rewrite && now.table && now.seqScans > before.seqScans
		// Report what this statement added: a stronger lock, or a
		// rewrite or scan under a lock held since an earlier one.
		if mode > t.held[oid] {
			t.since[oid] = step.Index
		} else if !l.Rewrite && !l.Scan {
			continue
		} else {
			l.Since = t.since[oid]
		}
		l.Target = t.tables[l.Relation]
		step.Locks = append(step.Locks, l)
	}
	sort.Slice(step.Locks, func(a, b int) bool { return step.Locks[a].Relation < step.Locks[b].Relation })
	t.rels, t.held = after, locks
	return nil
}

var (
	// The relation a statement that cannot run in a transaction works on,
	// as written (quoted or not, qualified or not).
	name              = `((?:"(?:[^"]|"")+"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\w$]+))?)`
	reConcurrentIndex = regexp.MustCompile(`(?is)^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?(?:\S+\s+)?on\s+(?:only\s+)?` + name)
	reDropConcurrent  = regexp.MustCompile(`(?is)^\s*drop\s+index\s+concurrently\s+(?:if\s+exists\s+)?` + name)
	reReindexConc     = regexp.MustCompile(`(?is)^\s*reindex\s+(?:\([^)]*\)\s*)?(?:index|table)\s+concurrently\s+` + name)
	reVacuum          = regexp.MustCompile(`(?is)^\s*vacuum\s*(\([^)]*\)|(?:(?:full|freeze|verbose|analyze)\s+)*)\s*` + name + `?`)
)

// documented returns the locks PostgreSQL's documentation gives for a
// statement that cannot run inside a transaction, and a note. The
// relation is resolved on the scratch database, where it exists, so that
// it is named as the target's tables are.
func documented(ctx context.Context, conn *sql.Conn, stmt string) ([]Lock, string) {
	const untraced = "cannot run in a transaction: not traced; locks from PostgreSQL's documentation"
	lock := func(rel string, mode Mode, rewrite, scan bool) []Lock {
		var resolved string
		err := conn.QueryRowContext(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, rel).Scan(&resolved)
		if err != nil {
			return []Lock{} // not found: described in the note alone
		}
		return []Lock{{Relation: resolved, Mode: mode, Rewrite: rewrite, Scan: scan}}
	}
	if m := reConcurrentIndex.FindStringSubmatch(stmt); m != nil {
		return lock(m[1], ShareUpdateExclusive, false, true),
			untraced + ": CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE and scans the table twice; reads and writes go on; it waits for every transaction that could use the index"
	}
	if m := reReindexConc.FindStringSubmatch(stmt); m != nil {
		return lock(m[1], ShareUpdateExclusive, false, true),
			untraced + ": REINDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE and rebuilds the index beside the old one"
	}
	if reDropConcurrent.MatchString(stmt) {
		return []Lock{}, untraced + ": DROP INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE on the table and waits for transactions using the index"
	}
	if m := reVacuum.FindStringSubmatch(stmt); m != nil {
		rel := m[2]
		full := regexp.MustCompile(`(?i)\bfull\b`).MatchString(m[1])
		switch strings.ToLower(rel) {
		case "full", "freeze", "verbose", "analyze":
			full, rel = full || strings.EqualFold(rel, "full"), ""
		}
		if rel == "" {
			return []Lock{}, untraced + ": VACUUM of every table of the database, one at a time (FULL: each rewritten under ACCESS EXCLUSIVE)"
		}
		if full {
			return lock(rel, AccessExclusive, true, false), untraced + ": VACUUM FULL rewrites the table under ACCESS EXCLUSIVE"
		}
		return lock(rel, ShareUpdateExclusive, false, true), untraced + ": VACUUM takes SHARE UPDATE EXCLUSIVE and reads the table; reads and writes go on"
	}
	return []Lock{}, "cannot run in a transaction: not traced"
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Threshold is a limit for CI: a statement that holds Mode or a stronger
// lock on a target table of at least Rows estimated rows while it
// rewrites or scans it, that is for a time that grows with the table.
type Threshold struct {
	Mode Mode
	Rows float64
}

// ParseThreshold reads MODE or MODE=ROWS ("ACCESS EXCLUSIVE=100000",
// "share=1e6"); without ROWS any size exceeds it.
func ParseThreshold(s string) (Threshold, error) {
	mode, rows, hasRows := strings.Cut(s, "=")
	m, err := ParseMode(strings.TrimSpace(mode))
	if err != nil {
		return Threshold{}, err
	}
	t := Threshold{Mode: m}
	if hasRows {
		if _, err := fmt.Sscanf(strings.TrimSpace(rows), "%g", &t.Rows); err != nil || t.Rows < 0 {
			return Threshold{}, fmt.Errorf("threshold %q: rows must be a number, as in %q", s, "ACCESS EXCLUSIVE=100000")
		}
	}
	return t, nil
}

// Exceeds reports whether l, held by a statement, crosses t. A table never
// analyzed (no row estimate) crosses any size: unknown is not small.
func (t Threshold) Exceeds(l Lock) bool {
	if l.Target == nil || l.Mode < t.Mode || !(l.Rewrite || l.Scan) {
		return false
	}
	return l.Target.Rows < 0 || l.Target.Rows >= t.Rows
}
