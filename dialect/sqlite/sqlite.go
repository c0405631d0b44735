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

	mu   sync.Mutex
	lock *os.File
}

var _ dialect.Dialect = (*Dialect)(nil)

func (*Dialect) Name() string           { return "sqlite" }
func (*Dialect) TransactionalDDL() bool { return true }

const (
	qTablesExist = `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version') > 0,
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'shiplock_checksums') > 0`
	qCreateVersionTable = `CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	)`
	qInsertVersion = `INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`
	qDeleteVersion = `DELETE FROM goose_db_version WHERE version_id=?`
	qListVersions  = `SELECT id, version_id, is_applied, tstamp FROM goose_db_version ORDER BY id DESC`

	qCreateChecksumTable = `CREATE TABLE IF NOT EXISTS shiplock_checksums (
		version_id INTEGER PRIMARY KEY,
		source TEXT NOT NULL,
		checksum TEXT NOT NULL,
		recorded_at TIMESTAMP DEFAULT (datetime('now'))
	)`
	qListChecksums = `SELECT version_id, source, checksum FROM shiplock_checksums`
	qPutChecksum   = `INSERT INTO shiplock_checksums (version_id, source, checksum) VALUES (?, ?, ?)
		ON CONFLICT (version_id) DO UPDATE SET source = excluded.source, checksum = excluded.checksum, recorded_at = datetime('now')`
	qDeleteChecksum = `DELETE FROM shiplock_checksums WHERE version_id = ?`
)

func (*Dialect) TablesExist(ctx context.Context, q dialect.Querier) (versions, checksums bool, err error) {
	err = q.QueryRowContext(ctx, qTablesExist).Scan(&versions, &checksums)
	return versions, checksums, err
}

func (*Dialect) CreateVersionTable(ctx context.Context, q dialect.Querier) error {
	if _, err := q.ExecContext(ctx, qCreateVersionTable); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, qInsertVersion, int64(0), true)
	return err
}

func (*Dialect) ListVersions(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, error) {
	rows, err := q.QueryContext(ctx, qListVersions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dialect.VersionRow
	for rows.Next() {
		var (
			r  dialect.VersionRow
			ts sql.NullTime
		)
		if err := rows.Scan(&r.ID, &r.Version, &r.IsApplied, &ts); err != nil {
			return nil, err
		}
		r.Time = ts.Time
		out = append(out, r)
	}
	return out, rows.Err()
}

func (*Dialect) InsertVersion(ctx context.Context, q dialect.Querier, v int64) error {
	_, err := q.ExecContext(ctx, qInsertVersion, v, true)
	return err
}

func (*Dialect) DeleteVersion(ctx context.Context, q dialect.Querier, v int64) error {
	_, err := q.ExecContext(ctx, qDeleteVersion, v)
	return err
}

func (*Dialect) EnsureChecksumTable(ctx context.Context, q dialect.Querier) error {
	_, err := q.ExecContext(ctx, qCreateChecksumTable)
	return err
}

func (*Dialect) ListChecksums(ctx context.Context, q dialect.Querier) ([]dialect.Checksum, error) {
	rows, err := q.QueryContext(ctx, qListChecksums)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dialect.Checksum
	for rows.Next() {
		var c dialect.Checksum
		if err := rows.Scan(&c.Version, &c.Source, &c.Checksum); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (*Dialect) PutChecksum(ctx context.Context, q dialect.Querier, c dialect.Checksum) error {
	_, err := q.ExecContext(ctx, qPutChecksum, c.Version, c.Source, c.Checksum)
	return err
}

func (*Dialect) DeleteChecksum(ctx context.Context, q dialect.Querier, v int64) error {
	_, err := q.ExecContext(ctx, qDeleteChecksum, v)
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
// file: URL) with a busy timeout and immediate transactions, so concurrent
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
	params.Add("_pragma", "busy_timeout(10000)")
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
