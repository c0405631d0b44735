package migrate

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrLockTimeout is returned when another runner held the migration
	// lock for longer than Options.LockTimeout.
	ErrLockTimeout = errors.New("migrate: lock not acquired in time")
	// ErrNoCurrentVersion is returned by Down and Redo when nothing is
	// applied.
	ErrNoCurrentVersion = errors.New("migrate: no migration applied")
	// ErrStopped is returned when the run was told to stop (SIGTERM, as
	// Kubernetes sends on pod deletion) and stopped between statements,
	// having recorded what completed. Rerunning continues: it is retryable.
	ErrStopped = errors.New("migrate: stopped before finishing")
)

// FileError is a migration file that cannot be used: badly named, a
// duplicate version, or a Go migration that is not registered.
type FileError struct {
	File string
	Msg  string
}

func (e *FileError) Error() string { return e.File + ": " + e.Msg }

// MigrationError is a migration that failed to apply or revert. Line is the
// 1-based line in File where the failing statement starts (0 for Go
// migrations and bookkeeping).
type MigrationError struct {
	Version   int64
	File      string
	Direction Direction
	Line      int
	Statement string // the failing statement, possibly shortened
	Err       error
	// InvalidIndexes are the indexes left INVALID in the database when a
	// migration outside a transaction failed.
	InvalidIndexes []string
	// OutsideTx is how many of the migration's statements ran, and stay,
	// outside a transaction before the one that failed (its marker
	// records them).
	OutsideTx int
}

func (e *MigrationError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	msg := fmt.Sprintf("%s: %s version %d: %v", loc, e.Direction.verb(), e.Version, e.Err)
	if len(e.InvalidIndexes) > 0 {
		msg += fmt.Sprintf(" (INVALID index left behind: %s; drop it before retrying)", strings.Join(e.InvalidIndexes, ", "))
	}
	return msg
}

func (e *MigrationError) Unwrap() error { return e.Err }

// PartialError is a run that stopped half-way: Applied holds what was done
// (and committed) before Err.
type PartialError struct {
	Applied []MigrationResult
	Err     error
}

func (e *PartialError) Error() string {
	if len(e.Applied) == 0 {
		return e.Err.Error()
	}
	vs := make([]string, len(e.Applied))
	for i, r := range e.Applied {
		vs[i] = fmt.Sprint(r.Version)
	}
	return fmt.Sprintf("%v (after %s %d: %s)", e.Err, e.Applied[0].Direction.pastTense(), len(e.Applied), strings.Join(vs, ", "))
}

func (e *PartialError) Unwrap() error { return e.Err }

// IntegrityError reports applied migrations whose files were edited or
// removed, or pending files older than the newest applied version. Up
// refuses to run while there are any, unless told to ignore them.
type IntegrityError struct {
	Problems []Problem
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	b.WriteString("migrate: integrity check failed:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// OtherVersionTableError is a run refused because goose_db_version (the
// default table, none given) is missing while a goose version table under
// another name exists: goose ran with -table, and starting goose_db_version
// would apply every migration again.
type OtherVersionTableError struct {
	Table string
}

func (e *OtherVersionTableError) Error() string {
	return fmt.Sprintf("goose_db_version does not exist, but goose version table %s does: pass --table %s (or, when it is another application's, start goose_db_version anyway by naming it with its schema: --table SCHEMA.goose_db_version); nothing was applied", e.Table, e.Table)
}

// UnregisteredError is a plan that reaches a numbered .go file with no
// registered Go migration. Go migrations run in a binary that has them
// compiled in: a team's own shiplock (shiplockmain) or the application.
type UnregisteredError struct {
	Version int64
	File    string
	// Compiled says the binary has Go migrations compiled in, just not
	// this one: the error then says where goose's registration goes.
	Compiled bool
}

func (e *UnregisteredError) Error() string {
	if e.Compiled {
		return fmt.Sprintf("%s: version %d is a Go migration that is not registered with goose (goose.AddMigrationContext in an init of a package your main imports) (nothing was applied)", e.File, e.Version)
	}
	return fmt.Sprintf("%s: version %d is a Go migration that is not registered in this binary; build a shiplock with it compiled in (README, \"Go migrations\"), or run it through the migrate library in the application (nothing was applied)", e.File, e.Version)
}

// ImplicitCommitError is a plan refused in transaction mode all: the
// statement at File:Line commits the transaction around it by itself
// (MySQL and MariaDB commit around DDL), so one transaction around the run
// could not roll it back. Nothing was run.
type ImplicitCommitError struct {
	Version   int64
	File      string
	Line      int
	Direction Direction
	Statement string // possibly shortened
}

func (e *ImplicitCommitError) Error() string {
	return fmt.Sprintf("%s:%d: %s version %d: the statement commits by itself (the database commits around DDL), so it cannot run in transaction mode all: %s", e.File, e.Line, e.Direction.verb(), e.Version, e.Statement)
}
