package cli

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// engineFlags are the flags of commands that change the database.
type engineFlags struct {
	txMode           string
	lockTimeout      time.Duration
	allowOutOfOrder  bool
	ignoreChecksums  bool
	strict           bool
	ddlLockTimeout   time.Duration
	statementTimeout time.Duration
	lockRetries      int
	lock             string
	lockLease        time.Duration
}

func (f *engineFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.txMode, "tx-mode", "file", "transactions: file (one per migration; on MySQL a file with DDL runs statement by statement, recorded), all (all-or-nothing; not with NO TRANSACTION files, nor MySQL DDL) or none")
	fs.DurationVar(&f.lockTimeout, "lock-timeout", 5*time.Minute, "give up when another runner holds the migration lock this long (exit 7); 0 waits forever")
	fs.BoolVar(&f.allowOutOfOrder, "allow-out-of-order", false, "apply pending files older than the newest applied version instead of refusing")
	fs.BoolVar(&f.allowOutOfOrder, "allow-missing", false, "goose's name for --allow-out-of-order")
	fs.BoolVar(&f.ignoreChecksums, "ignore-checksums", false, "run although applied migration files were edited")
	fs.BoolVar(&f.strict, "strict", false, "fail when the database has versions that no file describes (database ahead of the files)")
	// Readers queue behind a DDL statement that waits for its lock: the
	// lock timeout is how long live traffic may stall at a time, and the
	// retries (spaced so the queue drains) give the DDL its chances.
	fs.DurationVar(&f.ddlLockTimeout, "ddl-lock-timeout", time.Second, "how long each migration statement waits for a lock (PostgreSQL lock_timeout; MySQL lock_wait_timeout and innodb_lock_wait_timeout, whole seconds): the longest live queries queue behind a DDL statement waiting for its lock; 0 keeps the server's")
	fs.DurationVar(&f.statementTimeout, "statement-timeout", 0, "how long each migration statement may run (PostgreSQL statement_timeout; MariaDB max_statement_time; MySQL max_execution_time, which bounds SELECT only); 0 keeps the server's")
	fs.StringVar(&f.lock, "lock", "auto", "migration lock on PostgreSQL (MySQL and MariaDB take GET_LOCK and SQLite a flock with auto or session; lease is PostgreSQL only): session (advisory lock; on a connection not proven direct it trusts that every query reaches one server session, as PgBouncer pool_mode=session does, and warns), lease (a row in goose_lock with a heartbeat; works through PgBouncer in transaction mode) or auto (session when the connection is proven direct, lease otherwise)")
	fs.DurationVar(&f.lockLease, "lock-lease", migrate.DefaultLease, "length of the lease lock: how long a vanished or paused holder keeps other runners waiting")
	fs.IntVar(&f.lockRetries, "ddl-retries", 6, "retries of a migration that hit --ddl-lock-timeout or a deadlock, with doubling delays from 500ms (6: about 40s in all)")
}

func (f *engineFlags) options(g *globals) (migrate.Options, error) {
	mode, err := migrate.ParseTxMode(f.txMode)
	if err != nil {
		return migrate.Options{}, usagef("--tx-mode: " + err.Error())
	}
	lock, err := migrate.ParseLockMode(f.lock)
	if err != nil {
		return migrate.Options{}, usagef("--lock: " + err.Error())
	}
	if f.lockLease < time.Second {
		return migrate.Options{}, usagef("--lock-lease must be at least 1s")
	}
	if f.lockTimeout < 0 || f.ddlLockTimeout < 0 || f.statementTimeout < 0 || f.lockRetries < 0 {
		return migrate.Options{}, usagef("--lock-timeout, --ddl-lock-timeout, --statement-timeout and --ddl-retries must not be negative")
	}
	return migrate.Options{
		Logger:           g.log,
		TxMode:           mode,
		LockTimeout:      f.lockTimeout,
		AllowOutOfOrder:  f.allowOutOfOrder,
		IgnoreChecksums:  f.ignoreChecksums,
		Strict:           f.strict,
		DDLLockTimeout:   f.ddlLockTimeout,
		StatementTimeout: f.statementTimeout,
		LockRetries:      f.lockRetries,
		Lock:             lock,
		LockLease:        f.lockLease,
	}, nil
}

// loadMigrations parses the migrations directory; it touches no database.
//
// A missing directory, or one with no migration files, is a bad file (exit
// 3) naming the path: "nothing to do, at version 0" would let an
// initContainer start the app on an empty schema because of a wrong --dir.
// --allow-empty accepts an empty directory, never a missing one.
func (g *globals) loadMigrations() ([]*migrate.Migration, error) {
	if err := checkDir(g.dir); err != nil {
		return nil, err
	}
	var goms []migrate.GoMigration
	if collect := g.streams.GoMigrations; collect != nil {
		var err error
		if goms, err = collect(g.dir); err != nil {
			return nil, &migrate.FileError{File: g.dir, Msg: "read the Go migrations compiled into this binary: " + err.Error()}
		}
	}
	migs, err := migrate.Load(newDirFS(g.dir), ".", goms, g.envLookup)
	if err == nil && len(migs) == 0 && !g.allowEmpty {
		return nil, &migrate.FileError{File: g.dir, Msg: "no migration files (NNN_name.sql or .go) in the migrations directory; check --dir or SHIPLOCK_DIR, or pass --allow-empty if none is intended"}
	}
	// Name files as the user gave the directory, so editors can jump to them.
	var (
		perr *sqlfile.ParseError
		ferr *migrate.FileError
	)
	switch {
	case errors.As(err, &perr):
		perr.File = filepath.Join(g.dir, perr.File)
	case errors.As(err, &ferr):
		ferr.File = filepath.Join(g.dir, ferr.File)
	}
	return migs, err
}

// checkDir fails with a *migrate.FileError naming dir when it is not a
// directory that can be read.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &migrate.FileError{File: dir, Msg: "migrations directory does not exist; set --dir or SHIPLOCK_DIR"}
	case err != nil:
		return &migrate.FileError{File: dir, Msg: "cannot read the migrations directory: " + errors.Unwrap(err).Error()}
	case !fi.IsDir():
		return &migrate.FileError{File: dir, Msg: "is not a directory; set --dir or SHIPLOCK_DIR to the migrations directory"}
	}
	return nil
}

// withMigrator loads the files first (bad files fail before any
// connection), then opens the database and runs fn.
//
// With wait set, it first waits for the database to be ready; without, a
// single readiness attempt classifies a connection failure.
func (g *globals) withMigrator(ctx context.Context, opts migrate.Options, wait *waitFlags, fn func(*migrate.Migrator) error) error {
	return g.withTarget(ctx, opts, wait, func(m *migrate.Migrator, _ *sql.DB, _ target) error { return fn(m) })
}

// withTarget is withMigrator for a command that also reads the target
// database itself.
func (g *globals) withTarget(ctx context.Context, opts migrate.Options, wait *waitFlags, fn func(*migrate.Migrator, *sql.DB, target) error) error {
	t, err := g.resolveTarget()
	if err != nil {
		return err
	}
	db, d, err := t.open(g.table)
	if err != nil {
		return err
	}
	g.classifier = d // for the exit code
	defer db.Close()
	if _, ok := d.(dialect.Leaser); !ok && opts.Lock == migrate.LockLease {
		return usagef("--lock lease: the " + d.Name() + " dialect has no lease lock (PostgreSQL only); use --lock auto")
	}
	prepareDB(db)
	if g.streams.GoMigrations != nil {
		// A Go migration outside a transaction gets the pool (goose's
		// AddMigrationNoTxContext): uncapped, as goose leaves it.
		db.SetMaxOpenConns(0)
	}
	if wait == nil {
		wait = &waitFlags{}
	}
	// Parse every file while the connection is being made: a bad file
	// still fails before any query, and at once, even when the database
	// is down; a good directory costs no time of its own.
	type loaded struct {
		migs []*migrate.Migration
		err  error
	}
	files := make(chan loaded, 1)
	wctx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() {
		migs, err := g.loadMigrations()
		if err != nil {
			cancelWait()
		}
		files <- loaded{migs, err}
	}()
	_, waitErr := dbwait.Wait(wctx, db, d, wait.options(g))
	l := <-files
	if l.err != nil {
		return l.err
	}
	if waitErr != nil {
		return waitErr
	}
	if opts.Logger == nil {
		opts.Logger = g.log
	}
	return fn(migrate.New(db, d, l.migs, opts), db, t)
}

// prepareDB limits the pool: a run uses one connection.
func prepareDB(db *sql.DB) {
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
}
