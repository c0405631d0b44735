// Package sqlite is the SQLite dialect, on the pure-Go modernc.org/sqlite
// driver so that shiplock stays a static binary.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/shiplock/shiplock/dialect"
)

// Dialect is the SQLite dialect for one database file. SQLite has no
// advisory locks: the migration lock is an exclusive flock(2) on a file next
// to the database, released by the kernel when the process dies.
type Dialect struct {
	// LockPath is the lock file; "" disables locking (in-memory databases).
	LockPath string
	// Table is goose's version table (goose's -table; zero:
	// goose_db_version); shiplock's own table is Table.Records(), in the
	// same schema (attached database).
	Table dialect.Table

	mu   sync.Mutex
	lock *os.File
}

var _ dialect.Dialect = (*Dialect)(nil)

func (*Dialect) Name() string { return "sqlite" }

func (d *Dialect) VersionTable() dialect.Table { return d.Table }

// sql rewrites a query written for goose_db_version and shiplock_versions
// in the main schema for d.Table. A plain identifier is written as given,
// as goose writes it: SQLite keeps the CREATE TABLE text in its schema, and
// matches names without regard to case.
func (d *Dialect) sql(q string) string {
	if d.Table.IsZero() {
		return q
	}
	schema := d.Table.Schema()
	name, records := d.Table.Name(), d.Table.Records()
	qualify := func(id dialect.Ident) string {
		if schema.Text == "" {
			return ident(id)
		}
		return ident(schema) + "." + ident(id)
	}
	master, pragmaSchema := "sqlite_master", ""
	if schema.Text != "" {
		master, pragmaSchema = ident(schema)+".sqlite_master", ", "+quote(schema.Text)
	}
	return strings.NewReplacer(
		"'goose_db_version'", quote(name.Text)+" COLLATE NOCASE",
		"'shiplock_versions'", quote(records.Text)+" COLLATE NOCASE",
		"pragma_table_info('shiplock_versions')", "pragma_table_info("+quote(records.Text)+pragmaSchema+")",
		"sqlite_master", master,
		"goose_db_version", qualify(name),
		"shiplock_versions", qualify(records),
	).Replace(q)
}

func ident(id dialect.Ident) string {
	if !id.Quoted {
		return id.Text
	}
	return `"` + strings.ReplaceAll(id.Text, `"`, `""`) + `"`
}

const (
	qTablesExist = `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version') > 0,
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'shiplock_versions') > 0`
	qCreateVersionTable = `CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	)`
	qInsertVersion = `INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`
	qListVersions  = `SELECT id, version_id, is_applied, tstamp FROM goose_db_version ORDER BY id DESC`

	qCreateRecordTable = `CREATE TABLE IF NOT EXISTS shiplock_versions (
		version_id INTEGER PRIMARY KEY,
		source TEXT NOT NULL,
		checksum TEXT NOT NULL,
		state TEXT NOT NULL,
		statement INTEGER NOT NULL DEFAULT 0,
		updated_at TIMESTAMP NOT NULL DEFAULT (datetime('now'))
	)`
	// The marker columns came later; a table without them reads as if
	// they held their defaults. SQLite has no server process: pid is 0 and
	// no marker is ever alive (the lock is a file lock in one host).
	qRecordColumns  = `SELECT count(*) FROM pragma_table_info('shiplock_versions') WHERE name IN ('in_flight', 'total')`
	qListRecords    = `SELECT version_id, source, checksum, state, statement, updated_at, in_flight, CASE WHEN state = 'applied' THEN 0 ELSE total END, 0, NULL, 0 FROM shiplock_versions`
	qListRecordsOld = `SELECT version_id, source, checksum, state, statement, updated_at, 0, 0, 0, NULL, 0 FROM shiplock_versions`
	qPutRecord      = `INSERT INTO shiplock_versions (version_id, source, checksum, state, statement, in_flight, total) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (version_id) DO UPDATE SET source = excluded.source, checksum = excluded.checksum,
			state = excluded.state, statement = excluded.statement, in_flight = excluded.in_flight,
			total = excluded.total, updated_at = datetime('now')`
	qDeleteRecord = `DELETE FROM shiplock_versions WHERE version_id = ?`
)

func (d *Dialect) TablesExist(ctx context.Context, q dialect.Querier) (versions, records bool, err error) {
	err = q.QueryRowContext(ctx, d.sql(qTablesExist)).Scan(&versions, &records)
	return versions, records, err
}

// qOtherVersionTable finds a goose version table in the main schema, other
// than ? (one a concurrent runner may have just created).
const qOtherVersionTable = `SELECT m.name FROM sqlite_master m
	WHERE m.type = 'table' AND m.name <> ? AND (SELECT count(*) FROM pragma_table_info(m.name) p
		WHERE p.name IN ('version_id', 'is_applied', 'tstamp')) = 3
	ORDER BY m.name LIMIT 1`

func (d *Dialect) OtherVersionTable(ctx context.Context, q dialect.Querier) (string, error) {
	var name string
	err := q.QueryRowContext(ctx, qOtherVersionTable, d.Table.Name().Text).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

func (d *Dialect) CreateVersionTable(ctx context.Context, q dialect.Querier) error {
	if _, err := q.ExecContext(ctx, d.sql(qCreateVersionTable)); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, d.sql(qInsertVersion), int64(0), true)
	return err
}

func (d *Dialect) ListVersions(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, error) {
	return dialect.QueryVersions(ctx, q, d.sql(qListVersions))
}

// AppliedStatements: one INSERT per version, in order, and per record.
func (d *Dialect) AppliedStatements(rs ...dialect.Record) []string {
	// Table names are rewritten in the SQL text only, never in the values
	// (and never used as a format: a quoted name may hold a %).
	insertVersion := d.sql("INSERT INTO goose_db_version (version_id, is_applied) VALUES (")
	insertRecord := d.sql("INSERT INTO shiplock_versions (version_id, source, checksum, state, statement) VALUES (")
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s%d, 1)", insertVersion, r.Version))
		if r.Checksum != "" {
			out = append(out, fmt.Sprintf(`%s%d, %s, %s, 'applied', 0)
		ON CONFLICT (version_id) DO UPDATE SET source = excluded.source, checksum = excluded.checksum,
			state = excluded.state, statement = 0, updated_at = datetime('now')`, insertRecord, r.Version, quote(r.Source), quote(r.Checksum)))
		}
	}
	return out
}

func (d *Dialect) RevertedStatements(versions ...int64) []string {
	if len(versions) == 0 {
		return nil
	}
	list := make([]string, len(versions))
	for i, v := range versions {
		list[i] = strconv.FormatInt(v, 10)
	}
	in := strings.Join(list, ", ")
	return []string{
		d.sql("DELETE FROM goose_db_version WHERE version_id IN (" + in + ")"),
		d.sql("DELETE FROM shiplock_versions WHERE version_id IN (" + in + ")"),
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (d *Dialect) EnsureRecordTable(ctx context.Context, q dialect.Querier) error {
	if _, err := q.ExecContext(ctx, d.sql(qCreateRecordTable)); err != nil {
		return err
	}
	var n int
	if err := q.QueryRowContext(ctx, d.sql(qRecordColumns)).Scan(&n); err != nil || n == 2 {
		return err
	}
	for _, add := range []string{
		"ALTER TABLE shiplock_versions ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE shiplock_versions ADD COLUMN total INTEGER NOT NULL DEFAULT 0",
	} {
		if _, err := q.ExecContext(ctx, d.sql(add)); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dialect) ListRecords(ctx context.Context, q dialect.Querier) ([]dialect.Record, error) {
	var n int
	if err := q.QueryRowContext(ctx, d.sql(qRecordColumns)).Scan(&n); err != nil {
		return nil, err
	}
	if n < 2 {
		return dialect.QueryRecords(ctx, q, d.sql(qListRecordsOld))
	}
	return dialect.QueryRecords(ctx, q, d.sql(qListRecords))
}

func (d *Dialect) PutRecord(ctx context.Context, q dialect.Querier, r dialect.Record) error {
	_, err := q.ExecContext(ctx, d.sql(qPutRecord), r.Version, r.Source, r.Checksum, r.State, r.Statement, r.InFlight && r.State != dialect.StateApplied, r.Total)
	return err
}

func (d *Dialect) DeleteRecord(ctx context.Context, q dialect.Querier, v int64) error {
	_, err := q.ExecContext(ctx, d.sql(qDeleteRecord), v)
	return err
}

func (d *Dialect) TryLock(ctx context.Context, _ *sql.Conn) (bool, error) {
	if d.LockPath == "" {
		return true, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock != nil {
		return false, errors.New("lock already held by this process")
	}
	f, err := os.OpenFile(d.LockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("flock %s: %w", d.LockPath, err)
	}
	d.lock = f
	return true, nil
}

func (d *Dialect) Unlock(ctx context.Context, _ *sql.Conn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close() // closing the descriptor releases the flock
	d.lock = nil
	return err
}

func (d *Dialect) LockHolder(context.Context, *sql.Conn) (string, error) {
	if d.LockPath == "" {
		return "", nil
	}
	return "another process holding " + d.LockPath, nil
}

// Open opens the SQLite database at path (a file path, or a sqlite:// or
// file: URL) with a busy timeout (10 s unless the URL sets one with
// _pragma=busy_timeout(ms)) and immediate transactions, so concurrent
// writers wait instead of failing with SQLITE_BUSY. The returned dialect
// locks next to the database file.
func Open(path string) (*sql.DB, *Dialect, error) {
	file := strings.TrimPrefix(strings.TrimPrefix(path, "sqlite://"), "sqlite:")
	file = strings.TrimPrefix(file, "file:")
	query := ""
	if i := strings.IndexByte(file, '?'); i >= 0 {
		file, query = file[:i], file[i+1:]
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: parse options: %w", err)
	}
	if !params.Has("_txlock") {
		params.Set("_txlock", "immediate")
	}
	busy := false
	for _, p := range params["_pragma"] {
		busy = busy || strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), "busy_timeout")
	}
	if !busy {
		// A later pragma would override one the URL gives.
		params.Add("_pragma", "busy_timeout(10000)")
	}
	memory := file == ":memory:" || file == "" || params.Get("mode") == "memory"
	db, err := sql.Open("sqlite", "file:"+file+"?"+params.Encode())
	if err != nil {
		return nil, nil, err
	}
	d := &Dialect{}
	if !memory {
		d.LockPath = file + ".shiplock-lock"
	} else {
		// Each connection to :memory: is its own database.
		db.SetMaxOpenConns(1)
	}
	return db, d, nil
}

// ListAll reads both tables; an embedded database has no round trips to
// save.
func (d *Dialect) ListAll(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, []dialect.Record, error) {
	versions, err := d.ListVersions(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	records, err := d.ListRecords(ctx, q)
	return versions, records, err
}
