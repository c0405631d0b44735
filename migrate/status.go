package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// State is the state of one version in Status.
type State string

const (
	Applied State = "applied"
	Pending State = "pending"
	// Ahead: applied in the database, but no file describes it.
	Ahead State = "applied-no-file"
)

// VersionStatus is one row of Status.
type VersionStatus struct {
	Version   int64
	Source    string
	State     State
	AppliedAt time.Time
}

// Status is the database compared with the files, read without the lock.
type Status struct {
	Current  int64
	Latest   int64 // newest file version
	Versions []VersionStatus
	Pending  int
	Problems []Problem
	// OtherVersionTable is a goose version table under another name
	// (goose -table), found because goose_db_version is missing: the
	// versions it holds are not shown, and up refuses to start anew.
	OtherVersionTable string
}

// Status reads the database and compares it with the loaded migrations.
func (m *Migrator) Status(ctx context.Context) (*Status, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	st, err := m.readState(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := &Status{Current: st.current, Problems: m.problems(st), OtherVersionTable: st.otherTable}
	// An index a live runner is building is INVALID until it is done; the
	// dialect leaves out the builds it sees, and while a runner works no
	// INVALID index is called broken (another role's build may be hidden).
	if ic, ok := m.dialect.(dialect.IndexChecker); ok && len(st.markers(true)) == 0 {
		names, err := ic.InvalidIndexes(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("look for invalid indexes: %w", err)
		}
		for _, n := range names {
			out.Problems = append(out.Problems, Problem{Kind: InvalidIndex, File: n})
		}
	}
	if n := len(m.migrations); n > 0 {
		out.Latest = m.migrations[n-1].Version
	}
	i := 0
	for _, mig := range m.migrations {
		// Interleave database-only versions in version order.
		for ; i < len(st.appliedSorted) && st.appliedSorted[i] < mig.Version; i++ {
			if v := st.appliedSorted[i]; v != 0 {
				out.Versions = append(out.Versions, VersionStatus{Version: v, Source: st.records[v].Source, State: Ahead, AppliedAt: st.applied[v].Time})
			}
		}
		vs := VersionStatus{Version: mig.Version, Source: mig.Source, State: Pending}
		if row, ok := st.applied[mig.Version]; ok {
			vs.State, vs.AppliedAt = Applied, row.Time
			if i < len(st.appliedSorted) && st.appliedSorted[i] == mig.Version {
				i++
			}
		} else {
			out.Pending++
		}
		out.Versions = append(out.Versions, vs)
	}
	for ; i < len(st.appliedSorted); i++ {
		if v := st.appliedSorted[i]; v != 0 {
			out.Versions = append(out.Versions, VersionStatus{Version: v, Source: st.records[v].Source, State: Ahead, AppliedAt: st.applied[v].Time})
		}
	}
	// A pending migration run statement by statement that stopped
	// half-way, or runs now, is not simply pending: its state is its
	// problem's kind (interrupted, uncertain, in-progress); it still
	// counts in Pending. An applied one being reverted keeps "applied"
	// while its version row is there.
	for _, p := range out.Problems {
		switch p.Kind {
		case Interrupted, Uncertain, InProgress:
			for j := range out.Versions {
				if out.Versions[j].Version == p.Version && out.Versions[j].State == Pending {
					out.Versions[j].State = State(p.Kind)
				}
			}
		}
	}
	return out, nil
}

// Plan returns what Up (or Down with to, when down is true) would run now,
// without taking the lock or changing anything.
func (m *Migrator) Plan(ctx context.Context, dir Direction, up UpOptions, downTo int64) ([]*Migration, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	st, err := m.readState(ctx, conn)
	if err != nil {
		return nil, err
	}
	if dir == Down {
		return m.planDown(st, downTo)
	}
	return m.planUp(st, up)
}

// Verify reports every integrity problem: edited, missing, out-of-order and
// unrecorded files, interrupted migrations, and migrations in progress
// (not a failure: see InProgress).
func (m *Migrator) Verify(ctx context.Context) ([]Problem, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return nil, err
	}
	return st.Problems, nil
}
