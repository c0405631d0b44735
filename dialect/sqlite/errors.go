package sqlite

import (
	"errors"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/shiplock/shiplock/dialect"
)

// Classify: an embedded database is either there or not, so nothing is
// Retryable. A database still locked by another writer after the busy
// timeout (SQLITE_BUSY, SQLITE_LOCKED and their extended codes) is a
// LockConflict: the migration can run once that writer is done. Anything
// else (a syntax error, a constraint, a file that cannot be opened or
// written) is Permanent.
func (*Dialect) Classify(err error) dialect.ErrorClass {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return dialect.LockConflict
		}
	}
	return dialect.Permanent
}
