package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shiplock/shiplock/dialect"
)

// The pipeline's window: queries sent whose replies are not read yet. A
// client that writes without reading blocks once the socket buffers
// between it and the server are full, while the server, blocked writing
// replies nobody reads, stops reading queries: a deadlock. Kept below what
// the kernel buffers on both sides of one connection hold (a TCP send
// buffer starts at 16 KiB on Linux, the server's receive buffer at
// 128 KiB), a write never waits for the server. A query larger than the
// window goes alone, once every earlier reply is read.
const (
	windowBytes   = 32 << 10
	windowQueries = 1000
	// cancelGrace bounds the wait, after ctx ends, for the server to
	// answer what was sent (the statement running is cancelled); past it
	// the connection is closed, which ends the transaction too.
	cancelGrace = 10 * time.Second
)

// errCopyIn: goose's driver cannot feed COPY FROM STDIN either (pgx hangs
// there); the connection is closed so that the transaction ends.
var errCopyIn = errors.New("COPY FROM STDIN needs data from the client, which a migration cannot send")

// RunTx sends BEGIN, the settings (SET LOCAL: they end with the block),
// the statements and COMMIT, each statement as its own simple-protocol
// Query message (what pgx sends for a query without
// arguments, as under goose), pipelined: replies are read as they come
// while later queries are already on their way. That is safe inside the
// transaction block only: once a statement fails, the server aborts the
// block, every later query fails with 25P02 without effect and COMMIT
// answers ROLLBACK. The first error is the one reported.
func (Dialect) RunTx(ctx context.Context, conn *sql.Conn, s dialect.Settings, stmts []string) error {
	// BEGIN goes alone: were it in one string with a setting that fails
	// to parse, it would not run, and the statements pipelined after it
	// would run in autocommit. shiplock's own settings share one query
	// inside the block (one server round of work less each).
	queries := make([]string, 0, len(stmts)+3)
	queries = append(queries, "BEGIN")
	opening := 1
	if set := localSettings(s); set != "" {
		queries = append(queries, set)
		opening = 2
	}
	queries = append(queries, stmts...)
	queries = append(queries, "COMMIT")
	part := func(i int) int { return max(i-opening, -1) } // COMMIT: len(stmts)
	var terr *dialect.TxError
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: unexpected driver connection %T", dc)
		}
		failed, pos, err := pipeline(ctx, c.Conn().PgConn(), queries)
		if err != nil {
			terr = &dialect.TxError{Index: part(failed), Position: pos, Err: err}
		}
		return nil
	})
	if err != nil {
		return &dialect.TxError{Index: -1, Err: err}
	}
	if terr != nil {
		return terr
	}
	return nil
}

// pipeline runs queries[0] (BEGIN) to queries[n-1] (COMMIT) and returns
// the index of the first that failed, the error's position in it, and
// the error (nil when COMMIT committed).
func pipeline(ctx context.Context, pc *pgconn.PgConn, queries []string) (failed, pos int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if pc.IsClosed() {
		return 0, 0, errors.New("connection closed")
	}
	commit := len(queries) - 1
	var (
		sent, read int // queries sent; replies read
		inFlight   int // bytes of queries sent and unanswered
		owed       int // replies owed, including an extra ROLLBACK
		ended      bool
		rolledBack bool // ended with our own ROLLBACK, COMMIT unsent
		cancelled  bool
		rctx       = ctx
	)
	failed = -1
	fail := func(i, p int, e error) {
		if err == nil {
			failed, pos, err = i, p, e
		}
	}
	// stop sends ROLLBACK instead of what remains, unless COMMIT is
	// already on its way (it will answer ROLLBACK by itself).
	stop := func() {
		if ended {
			return
		}
		ended = true
		if sent <= commit {
			pc.Frontend().SendQuery(&pgproto3.Query{String: "ROLLBACK"})
			owed++
			rolledBack = true
			if ferr := pc.Frontend().Flush(); ferr != nil {
				fail(read, 0, ferr)
			}
		}
	}
	broken := func() (int, int, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = pc.Close(cctx)
		return failed, pos, err
	}
	for read < sent+owed || (!ended && sent < len(queries)) {
		// Refill the window once half of it is answered: few writes.
		if !ended && sent < len(queries) && (sent == read || inFlight <= windowBytes/2) {
			for sent < len(queries) && (sent == read || inFlight+len(queries[sent]) <= windowBytes && sent-read < windowQueries) {
				pc.Frontend().SendQuery(&pgproto3.Query{String: queries[sent]})
				inFlight += len(queries[sent])
				sent++
			}
			if ferr := pc.Frontend().Flush(); ferr != nil {
				fail(read, 0, ferr)
				return broken()
			}
		}
		r, rerr := readReply(rctx, pc)
		if rerr != nil {
			if ctx.Err() != nil && !cancelled && !pc.IsClosed() {
				// Told to stop: cancel the statement running, end the
				// transaction and read what the server still owes, so
				// the connection stays usable and the outcome is known
				// (a COMMIT already sent may have committed).
				cancelled = true
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cancelGrace)
				defer cancel()
				_ = pc.CancelRequest(rctx)
				stop()
				continue
			}
			fail(read, 0, rerr)
			return broken()
		}
		if read >= sent {
			// The extra ROLLBACK's reply.
			owed--
			continue
		}
		i := read
		read++
		inFlight -= len(queries[i])
		switch {
		case r.copyIn:
			fail(i, 0, errCopyIn)
			return broken()
		case r.err != nil:
			p := 0
			var pgErr *pgconn.PgError
			if errors.As(r.err, &pgErr) {
				p = int(pgErr.Position)
			}
			fail(i, p, r.err)
			stop()
		case i == commit && r.tag != "COMMIT":
			// The block was aborted by an error reported above; a
			// ROLLBACK with no error before it cannot happen, but is
			// not a commit.
			fail(i, 0, fmt.Errorf("transaction rolled back (COMMIT answered %q)", r.tag))
		case i > 0 && i < commit && r.txStatus != 'T':
			// A statement left the transaction block (transaction
			// control that should not have been pipelined): stop
			// sending.
			fail(i, 0, errors.New("the statement ended the migration's transaction: a file with transaction-control statements must run statement by statement"))
			stop()
		}
	}
	if err == nil && rolledBack {
		// Stopped between two queries: nothing failed, nothing committed.
		fail(sent, 0, ctx.Err())
	} else if err != nil && cancelled {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	// With no error, COMMIT committed, even when the cancellation came
	// too late to stop it.
	return failed, pos, err
}

// reply is what the server answered to one simple Query.
type reply struct {
	err      error  // the first ErrorResponse
	tag      string // the last command tag
	txStatus byte   // from ReadyForQuery
	copyIn   bool
}

// readReply reads messages up to the ReadyForQuery that ends one query's
// reply.
func readReply(ctx context.Context, pc *pgconn.PgConn) (reply, error) {
	var r reply
	for {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			return r, err
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			r.txStatus = m.TxStatus
			return r, nil
		case *pgproto3.CommandComplete:
			r.tag = string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			if r.err == nil {
				r.err = pgconn.ErrorResponseToPgError(m)
			}
		case *pgproto3.CopyInResponse, *pgproto3.CopyBothResponse:
			r.copyIn = true
			return r, nil
		}
	}
}
