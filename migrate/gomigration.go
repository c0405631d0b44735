package migrate

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/shiplock/shiplock/dialect"
)

// TxFunc is a Go migration run inside the migration's transaction, which
// also records its version (goose's AddMigrationContext).
type TxFunc func(ctx context.Context, tx *sql.Tx) error

// ConnFunc is a Go migration run outside any transaction, on the run's
// connection.
type ConnFunc func(ctx context.Context, conn *sql.Conn) error

// DBFunc is a Go migration run outside any transaction with the
// Migrator's *sql.DB, as goose's AddMigrationNoTxContext runs it: it may
// use any connection of the pool. Its version is recorded after it
// returns.
type DBFunc func(ctx context.Context, db *sql.DB) error

// GoMigration is a migration written in Go, given to Load (package
// goosemigrations converts goose's registered ones). Set Up/Down for a
// transactional migration, or, with NoTx, UpNoTx/DownNoTx or UpDB/DownDB
// for one that must run outside a transaction (one kind per direction;
// UpNoTx wins over UpDB). A nil function is an empty direction: the
// version is recorded (up) or removed (down) all the same, as goose does.
//
// A Go migration has no checksum: the code that runs is compiled into the
// binary, so there is no file content to compare, and verify never calls
// it edited.
//
// When a transactional one fails, its transaction rolls back with the
// version row: nothing of it remains. When one outside a transaction
// fails, or its process dies, its version is not recorded and what it did
// before stays, as with goose; the next up runs it again from its start.
type GoMigration struct {
	Version  int64
	Source   string // the .go file name, for messages; may be empty
	Up, Down TxFunc
	// NoTx selects UpNoTx/DownNoTx or UpDB/DownDB.
	NoTx             bool
	UpNoTx, DownNoTx ConnFunc
	UpDB, DownDB     DBFunc
}

func (m *Migrator) runGo(ctx context.Context, q dialect.Querier, conn *sql.Conn, mig *Migration, dir Direction, r *MigrationResult) error {
	g := mig.gom
	if g.NoTx {
		fn, dbfn := g.UpNoTx, g.UpDB
		if dir == Down {
			fn, dbfn = g.DownNoTx, g.DownDB
		}
		r.Empty = fn == nil && dbfn == nil
		if r.Empty {
			return nil
		}
		if conn == nil {
			return fmt.Errorf("no-transaction Go migration cannot run inside a transaction")
		}
		var err error
		if fn != nil {
			err = fn(ctx, conn)
		} else {
			err = dbfn(ctx, m.db)
		}
		if err != nil {
			return fmt.Errorf("%w; it ran outside a transaction: what it did before failing stays and its version is not recorded, as goose leaves it; undo that work or make the migration safe to run again, then the next %s runs it again from its start", err, dir)
		}
		return nil
	}
	fn := g.Up
	if dir == Down {
		fn = g.Down
	}
	r.Empty = fn == nil
	if fn == nil {
		return nil
	}
	tx, ok := q.(*sql.Tx)
	if !ok {
		return fmt.Errorf("transactional Go migration run without a transaction")
	}
	return fn(ctx, tx)
}
