package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// RepairAction says how Repair settles a migration that was interrupted
// half-way outside a transaction.
type RepairAction int

const (
	// Resume runs the remaining statements, starting with the one that
	// was running when the migration stopped: the operator says it did
	// not take effect (where the catalog tells, it decides).
	Resume RepairAction = iota
	// Restart runs every statement again (for idempotent statements, or
	// after undoing the completed ones by hand).
	Restart
	// MarkDone records the migration as finished: the rest was done by
	// hand.
	MarkDone
	// Forget clears the marker as if the migration had never started: its
	// completed statements were undone by hand.
	Forget
	// Skip records the statement that was running when the migration
	// stopped as done (the operator says it took effect) and runs the
	// rest.
	Skip
)

// pastTense says what the action did, for a summary.
func (a RepairAction) pastTense() string {
	return [...]string{Resume: "resumed", Restart: "restarted", MarkDone: "marked done", Forget: "forgotten", Skip: "skipped its interrupted statement, then finished"}[a]
}

// RepairOptions modify Repair. The zero value is the safe default.
type RepairOptions struct {
	// Force lets Resume, Skip and Restart run although the file changed
	// since the marker was written (its checksum differs).
	Force bool
}

// ParseRepairAction parses "resume", "skip", "restart", "mark-done" or
// "forget".
func ParseRepairAction(s string) (RepairAction, error) {
	switch s {
	case "skip":
		return Skip, nil
	case "resume":
		return Resume, nil
	case "restart":
		return Restart, nil
	case "mark-done":
		return MarkDone, nil
	case "forget":
		return Forget, nil
	}
	return 0, fmt.Errorf("unknown repair action %q (want resume, skip, restart, mark-done or forget)", s)
}

// ErrNothingToRepair is returned by Repair, with a Result that says the
// current version, when no migration was interrupted.
var ErrNothingToRepair = fmt.Errorf("migrate: no interrupted migration to repair")

// Repair settles the interrupted NO TRANSACTION migrations (normally one)
// under the migration lock, as action says. A migration still in progress
// is waited for (its runner holds the lock). Resume, Skip and Restart
// refuse a file changed since the marker was written unless opts.Force;
// a statement the catalog settles is settled by it.
func (m *Migrator) Repair(ctx context.Context, action RepairAction, opts RepairOptions) (*Result, error) {
	start := time.Now()
	conn, st, release, err := m.lockedState(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if st.recordTableExists {
		// A marker written before the marker columns existed.
		if err := m.dialect.EnsureRecordTable(ctx, conn); err != nil {
			return nil, fmt.Errorf("upgrade %s: %w", recordsTable(m.dialect), err)
		}
	}
	markers := st.interrupted()
	res := &Result{From: st.current, To: st.current, Repair: action.pastTense()}
	if len(markers) == 0 {
		return res, ErrNothingToRepair
	}
	for _, r := range markers {
		dir := Up
		if r.State == dialect.StateReverting {
			dir = Down
		}
		mig := m.byVersion[r.Version]
		if mig == nil && action != Forget {
			return res, &FileError{File: r.Source, Msg: fmt.Sprintf("version %d was interrupted but its file is not here; only --forget works without it", r.Version)}
		}
		var (
			mr  MigrationResult
			err error
		)
		switch action {
		case Resume, Skip:
			mode := settleNotRan
			if action == Skip {
				mode = settleRan
			}
			var first int
			if first, err = m.settle(ctx, conn, mig, r, mode, opts.Force); err == nil {
				mr, err = m.runNoTx(ctx, conn, mig, dir, first)
			}
		case Restart:
			if !mig.MatchesChecksum(r.Checksum) && !opts.Force {
				p := m.markerProblem(r)
				err = &IntegrityError{Problems: []Problem{p}}
				break
			}
			mr, err = m.runNoTx(ctx, conn, mig, dir, 0)
		case MarkDone:
			mr = MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
			err = m.inTx(ctx, conn, func(tx *sql.Tx) error {
				if dir == Up {
					return dialect.MarkApplied(ctx, m.dialect, tx, m.record(mig, dialect.StateApplied, 0))
				}
				return dialect.MarkReverted(ctx, m.dialect, tx, mig.Version)
			})
		case Forget:
			if dir == Down {
				// Reverting had not finished: the version is still applied.
				r.State, r.Statement = dialect.StateApplied, 0
				err = m.dialect.PutRecord(ctx, conn, r)
			} else {
				err = m.dialect.DeleteRecord(ctx, conn, r.Version)
			}
			m.log.Info("forgot interrupted migration", "version", r.Version, "file", r.Source)
		}
		if err != nil {
			res.Duration = time.Since(start)
			return res, &PartialError{Applied: res.Applied, Err: err}
		}
		res.Repaired = append(res.Repaired, r.Version)
		if action != Forget {
			res.Applied = append(res.Applied, mr)
			m.logResults([]MigrationResult{mr})
		}
	}
	res.To = st.after(res.Applied)
	res.Duration = time.Since(start)
	return res, nil
}

// lockedState connects, takes the migration lock whatever is pending
// (waiting for a runner in progress) and reads the state under it, for
// the commands that change bookkeeping rather than apply: release unlocks
// and closes.
func (m *Migrator) lockedState(ctx context.Context) (*sql.Conn, *state, func(), error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect: %w", err)
	}
	always := func(*state) bool { return true }
	lease, err := m.chooseLock(ctx, conn)
	if err == nil {
		_, _, err = m.lockWith(ctx, conn, always, lease)
	}
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	release := func() { m.unlock(ctx, conn); conn.Close() }
	if lease != nil {
		// Its writes are fenced; what runs is not cancelled on a loss.
		_, stop := m.holdLease(ctx, lease)
		release = func() {
			var err error
			stop(&err)
			conn.Close()
		}
	}
	st, err := m.readState(ctx, conn)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	return conn, st, release, nil
}
