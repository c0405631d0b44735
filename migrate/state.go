package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// state is what the database says: applied versions as goose reads them
// (the newest row of each version decides) and recorded checksums.
type state struct {
	tableExists       bool
	recordTableExists bool
	applied           map[int64]dialect.VersionRow
	appliedSorted     []int64 // ascending, including 0
	current           int64   // highest applied version
	records           map[int64]dialect.Record
	// otherTable is a goose version table under another name, looked for
	// when goose_db_version (the default, no table given) is missing.
	otherTable string
}

// markers returns the markers of migrations running statement by
// statement that have not finished, in version order: with alive, those
// whose runner is still at work (in progress), else those whose runner is
// gone (interrupted).
func (st *state) markers(alive bool) []dialect.Record {
	var out []dialect.Record
	for _, r := range st.records {
		if r.State != dialect.StateApplied && r.Alive == alive {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// interrupted returns the markers whose runner is gone.
func (st *state) interrupted() []dialect.Record { return st.markers(false) }

func (m *Migrator) readState(ctx context.Context, conn *sql.Conn) (*state, error) {
	st := &state{applied: map[int64]dialect.VersionRow{}, records: map[int64]dialect.Record{}}
	var err error
	st.tableExists, st.recordTableExists, err = m.dialect.TablesExist(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.dialect.VersionTable(), err)
	}
	if !st.tableExists {
		if m.dialect.VersionTable().IsZero() {
			if st.otherTable, err = m.dialect.OtherVersionTable(ctx, conn); err != nil {
				return nil, fmt.Errorf("look for a goose version table under another name: %w", err)
			}
		}
		return st, nil
	}
	var (
		rows []dialect.VersionRow
		recs []dialect.Record
	)
	if st.recordTableExists {
		rows, recs, err = m.dialect.ListAll(ctx, conn)
	} else {
		rows, err = m.dialect.ListVersions(ctx, conn)
	}
	if err != nil {
		v, r := m.dialect.VersionTable().Names()
		return nil, fmt.Errorf("read %s and %s: %w", v, r, err)
	}
	for _, r := range recs {
		st.records[r.Version] = r
	}
	seen := make(map[int64]bool, len(rows))
	for _, r := range rows { // newest id first
		if seen[r.Version] {
			continue
		}
		seen[r.Version] = true
		if r.IsApplied {
			st.applied[r.Version] = r
			st.appliedSorted = append(st.appliedSorted, r.Version)
		}
	}
	sort.Slice(st.appliedSorted, func(i, j int) bool { return st.appliedSorted[i] < st.appliedSorted[j] })
	if n := len(st.appliedSorted); n > 0 {
		st.current = st.appliedSorted[n-1]
	}
	return st, nil
}

// after returns the current version once results are applied to st.
func (st *state) after(results []MigrationResult) int64 {
	gone := make(map[int64]bool)
	cur := int64(0)
	for _, r := range results {
		if r.Direction == Down {
			gone[r.Version] = true
		} else {
			cur = max(cur, r.Version)
		}
	}
	for i := len(st.appliedSorted) - 1; i >= 0; i-- {
		if v := st.appliedSorted[i]; !gone[v] {
			return max(cur, v)
		}
	}
	return cur
}

// ProblemKind classifies an integrity problem.
type ProblemKind string

const (
	// Edited: an applied file's content differs from what was applied.
	Edited ProblemKind = "edited"
	// MissingFile: a version is applied but no file describes it (the
	// database is ahead of the files).
	MissingFile ProblemKind = "missing-file"
	// OutOfOrder: a pending file is older than the newest applied version.
	OutOfOrder ProblemKind = "out-of-order"
	// Unrecorded: applied by another tool (goose); no checksum yet. Up
	// records it.
	Unrecorded ProblemKind = "unrecorded"
	// Interrupted: a migration running outside a transaction stopped
	// half-way (crash, error or stop) and its runner is gone. Up resumes
	// it where the marker and the catalog tell; see Migrator.Repair.
	Interrupted ProblemKind = "interrupted"
	// InProgress: a migration running outside a transaction whose runner
	// still holds the migration lock. Not an error: it is being applied.
	InProgress ProblemKind = "in-progress"
	// Uncertain: an interrupted migration's statement was running when its
	// runner died, and the database cannot tell whether it took effect;
	// the operator decides with Repair (Resume: it did not; Skip: it did).
	Uncertain ProblemKind = "uncertain"
	// InvalidIndex: an index left INVALID by a failed CREATE INDEX
	// CONCURRENTLY; File holds its name. Drop it and run the migration
	// again.
	InvalidIndex ProblemKind = "invalid-index"
)

// Problem is one finding of Verify.
type Problem struct {
	Kind    ProblemKind
	Version int64
	File    string
	// Recorded and Actual are the checksums, for Edited.
	Recorded, Actual string
	// For Interrupted: the direction, and how many statements completed
	// out of Total (Total is 0 when the file is gone).
	Direction        Direction
	Completed, Total int
	// Line is where the next statement to run starts, for Interrupted.
	Line int
	// For Interrupted, InProgress and Uncertain: the runner's server
	// process, when it started the migration, whether statement Completed
	// (0-based) was running when the runner stopped, and its text.
	Pid       int64
	Since     time.Time
	InFlight  bool
	Statement string
	// Changed: the file differs from the one the marker was written for.
	Changed bool
	// NoTx: the file says "-- +goose NO TRANSACTION". A marker of any
	// other file comes from a run statement by statement for another
	// reason: a MySQL file holding DDL (which commits by itself), a file
	// with its own COMMIT, --tx-mode none.
	NoTx bool
}

// String states the problem as a fact: what was found where, with no
// advice on what to run about it (the caller words that; shiplock's CLI
// does in internal/cli).
func (p Problem) String() string {
	switch p.Kind {
	case Edited:
		return fmt.Sprintf("%s: version %d was edited after it was applied (checksum %.12s, applied %.12s)", p.File, p.Version, p.Actual, p.Recorded)
	case MissingFile:
		src := p.File
		if src == "" {
			src = "no file"
		}
		return fmt.Sprintf("version %d is applied but has no migration file (%s): the database is ahead of these files", p.Version, src)
	case OutOfOrder:
		return fmt.Sprintf("%s: version %d is pending but older than the newest applied version", p.File, p.Version)
	case Unrecorded:
		return fmt.Sprintf("%s: version %d was applied without shiplock", p.File, p.Version)
	case InvalidIndex:
		return fmt.Sprintf("index %s is INVALID (a CREATE INDEX CONCURRENTLY failed)", p.File)
	case InProgress:
		since := ""
		if !p.Since.IsZero() {
			since = ", since " + p.Since.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return fmt.Sprintf("%s: version %d (%s) is in progress (%s by server process %d%s, statement %d of %d)", p.File, p.Version, p.mode(), p.Direction.progressive(), p.Pid, since, min(p.Completed+1, p.Total), p.Total)
	case Uncertain:
		return fmt.Sprintf("%s: version %d (%s): statement %d of %d was running when its runner (server process %d) stopped, and the database cannot tell whether it took effect: %s", p.location(), p.Version, p.mode(), p.Completed+1, p.Total, p.Pid, p.Statement)
	case Interrupted:
		where := fmt.Sprintf("after %d of %d statements", p.Completed, p.Total)
		if p.Line > 0 {
			where += fmt.Sprintf(", next at line %d", p.Line)
		}
		s := fmt.Sprintf("%s: version %d (%s) was interrupted while %s, %s", p.File, p.Version, p.mode(), p.Direction.progressive(), where)
		switch {
		case p.Changed:
			s += ", and the file changed since"
		case p.InFlight:
			s += fmt.Sprintf("; statement %d was running when its runner stopped", p.Completed+1)
		}
		return s
	}
	return string(p.Kind)
}

// mode says why the migration ran statement by statement.
func (p Problem) mode() string {
	if p.NoTx {
		return "NO TRANSACTION"
	}
	return "run statement by statement"
}

func (p Problem) location() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return p.File
}

// markerProblem describes a marker: in progress when its runner is alive,
// else interrupted.
func (m *Migrator) markerProblem(r dialect.Record) Problem {
	p := Problem{Kind: Interrupted, Version: r.Version, File: r.Source, Completed: r.Statement, Total: r.Total,
		Direction: markerDirection(r), Pid: r.Pid, Since: r.Started, InFlight: r.InFlight}
	if r.Alive {
		p.Kind = InProgress
	}
	if mig := m.byVersion[r.Version]; mig != nil {
		stmts := mig.Statements(p.Direction)
		if mig.MatchesChecksum(r.Checksum) || p.Total == 0 {
			p.Total = len(stmts)
		}
		if r.Statement < len(stmts) {
			p.Line = stmts[r.Statement].Line
			p.Statement = shorten(stmts[r.Statement].SQL)
		}
		p.Changed = !mig.MatchesChecksum(r.Checksum)
		p.NoTx = mig.NoTx
	}
	return p
}

// problems compares the files with the state.
func (m *Migrator) problems(st *state) []Problem {
	var out []Problem
	for _, r := range st.markers(true) {
		out = append(out, m.markerProblem(r))
	}
	for _, r := range st.interrupted() {
		out = append(out, m.markerProblem(r))
	}
	for _, v := range st.appliedSorted {
		if v == 0 {
			continue
		}
		mig := m.byVersion[v]
		r, recorded := st.records[v]
		recorded = recorded && r.State == dialect.StateApplied
		switch {
		case mig == nil:
			out = append(out, Problem{Kind: MissingFile, Version: v, File: r.Source})
		case mig.Checksum == "":
		case !recorded:
			out = append(out, Problem{Kind: Unrecorded, Version: v, File: mig.Source})
		case !mig.MatchesChecksum(r.Checksum):
			out = append(out, Problem{Kind: Edited, Version: v, File: mig.Source, Recorded: r.Checksum, Actual: mig.Checksum})
		}
	}
	for _, mig := range m.migrations {
		if _, ok := st.applied[mig.Version]; !ok && mig.Version < st.current {
			out = append(out, Problem{Kind: OutOfOrder, Version: mig.Version, File: mig.Source})
		}
	}
	return out
}

// blocking returns the problems that stop a run: a migration interrupted
// in the other direction (or in transaction mode "all"), the others unless
// an option allows them. A marker in the run's direction is not one: the
// run waits for its runner, or resumes it under the lock (see settle).
func (m *Migrator) blocking(st *state, dir Direction) error {
	var out []Problem
	for _, p := range m.problems(st) {
		switch {
		case p.Kind == Interrupted && (p.Direction != dir || m.opts.TxMode == TxAll),
			dir == Up && p.Kind == Edited && !m.opts.IgnoreChecksums,
			dir == Up && p.Kind == OutOfOrder && !m.opts.AllowOutOfOrder,
			dir == Up && p.Kind == MissingFile && m.opts.Strict:
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return &IntegrityError{Problems: out}
	}
	return nil
}

func (m *Migrator) planUp(st *state, o UpOptions) ([]*Migration, error) {
	if err := m.blocking(st, Up); err != nil {
		return nil, err
	}
	var todo []*Migration
	for _, mig := range m.migrations {
		if _, ok := st.applied[mig.Version]; ok {
			continue
		}
		if o.To > 0 && mig.Version > o.To {
			break
		}
		todo = append(todo, mig)
		if o.ByOne {
			break
		}
	}
	return todo, m.checkRunnable(todo, Up)
}

func (m *Migrator) planDown(st *state, to int64) ([]*Migration, error) {
	if err := m.blocking(st, Down); err != nil {
		return nil, err
	}
	var todo []*Migration
	for i := len(st.appliedSorted) - 1; i >= 0; i-- {
		v := st.appliedSorted[i]
		if v == 0 || (to >= 0 && v <= to) {
			break
		}
		mig := m.byVersion[v]
		if mig == nil {
			src := "no file"
			if r, ok := st.records[v]; ok {
				src = r.Source
			}
			return nil, &FileError{File: src, Msg: fmt.Sprintf("version %d is applied but there is no migration file to revert it", v)}
		}
		todo = append(todo, mig)
		if to < 0 {
			break
		}
	}
	return todo, m.checkRunnable(todo, Down)
}

func (m *Migrator) checkRunnable(todo []*Migration, dir Direction) error {
	for _, mig := range todo {
		if mig.Kind == KindGoUnregistered {
			return &UnregisteredError{Version: mig.Version, File: mig.Source}
		}
		if mig.NoTx && m.opts.TxMode == TxAll {
			return &FileError{File: mig.Source, Msg: "is NO TRANSACTION and cannot run in transaction mode \"all\"", Reason: NotInOneTransaction}
		}
		if m.opts.TxMode == TxAll && mig.Kind == KindSQL && (hasTxControl(mig.Statements(Up)) || hasTxControl(mig.Statements(Down))) {
			return &FileError{File: mig.Source, Msg: "holds transaction-control statements (BEGIN, COMMIT, ...) and cannot run in transaction mode \"all\"", Reason: NotInOneTransaction}
		}
		if sc, ok := m.dialect.(dialect.StepChecker); ok && mig.Kind == KindSQL {
			for _, s := range mig.Statements(dir) {
				if why := sc.StepConflict(s.SQL); why != "" {
					return &FileError{File: fmt.Sprintf("%s:%d", mig.Source, s.Line), Msg: why}
				}
			}
		}
		if m.opts.TxMode == TxAll && mig.Kind == KindSQL {
			if s, ok := m.firstImplicitCommit(mig.Statements(dir)); ok {
				return &ImplicitCommitError{Version: mig.Version, File: mig.Source, Line: s.Line, Direction: dir, Statement: shorten(s.SQL)}
			}
		}
	}
	return nil
}

// recordsTable names shiplock's own table, for messages.
func recordsTable(d dialect.Dialect) string {
	_, r := d.VersionTable().Names()
	return r
}
