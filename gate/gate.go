// Package gate tells an application whether the database schema has reached
// the version it needs: the check behind `shiplock await`, `shiplock check`
// and an app's own readiness endpoint.
//
// A check is read-only: it takes no lock, uses one connection and runs only
// SELECTs on goose_db_version and shiplock_versions, so credentials that may
// only read those two tables suffice. It never waits for a running
// migration; it reports what is committed.
//
// The schema is ready when its current version (the highest applied one, as
// goose counts it) is at or past the version needed, no migration that ran
// outside a transaction was left interrupted half-way (a crash marker in
// shiplock_versions whose runner is gone). A
// migration in progress (its runner alive) is no error: the reason names it
// while the schema is behind. A database ahead of the need is ready: an older app
// runs against a newer schema during a rollout and after a rollback of the
// app.
package gate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/shiplock/shiplock/dialect"
)

// ErrNotReady is wrapped by the error Await returns when its context ends
// before the schema is ready.
var ErrNotReady = errors.New("gate: schema not ready")

// Status is the outcome of one check.
type Status struct {
	// Current is the highest applied version; 0 when nothing is applied or
	// goose_db_version does not exist.
	Current int64 `json:"current"`
	// Need is the version asked for.
	Need int64 `json:"need"`
	// Ready reports Current >= Need with no interrupted migration.
	Ready bool `json:"ready"`
	// Interrupted lists, in ascending order, the versions whose
	// NO TRANSACTION migration stopped half-way and whose runner is gone
	// (crash markers).
	Interrupted []int64 `json:"interrupted,omitempty"`
	// InProgress lists, in ascending order, the versions whose NO
	// TRANSACTION migration a live runner is applying (it holds the
	// migration lock): not an error, and no reason for a schema at or past
	// Need not to be ready.
	InProgress []int64 `json:"in_progress,omitempty"`
	// Reason says why in a few words, for logs and probes: "at 5, need 7",
	// "version 6 interrupted half-way (crash marker)", "no goose_db_version
	// table yet". It is set whether or not the schema is ready.
	Reason string `json:"reason"`
}

// Check reads the schema version once and compares it with need. It runs
// TablesExist, ListVersions and ListRecords of d on one connection taken from
// db and returned before Check returns; no transaction is opened (on SQLite a
// transaction would take the write lock).
//
// need <= 0 asks for no version: the schema is then ready unless a crash
// marker is present, even without goose_db_version.
//
// An error means the check could not be made (connection, permissions); the
// Status is then the zero value. Check is safe for concurrent use.
func Check(ctx context.Context, db *sql.DB, d dialect.Dialect, need int64) (Status, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	versions, records, err := d.TablesExist(ctx, conn)
	if err != nil {
		return Status{}, fmt.Errorf("find version tables: %w", err)
	}
	st := Status{Need: need}
	var progress string // the first in-progress marker, described
	if versions {
		rows, err := d.ListVersions(ctx, conn)
		if err != nil {
			return Status{}, fmt.Errorf("read %s: %w", d.VersionTable(), err)
		}
		st.Current = current(rows)
	}
	if records {
		recs, err := d.ListRecords(ctx, conn)
		if err != nil {
			_, r := d.VersionTable().Names()
			return Status{}, fmt.Errorf("read %s: %w", r, err)
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].Version < recs[j].Version })
		for _, r := range recs {
			switch {
			case r.State == dialect.StateApplied:
			case r.Alive:
				st.InProgress = append(st.InProgress, r.Version)
				if progress == "" {
					progress = inProgress(r)
				}
			default:
				st.Interrupted = append(st.Interrupted, r.Version)
			}
		}
	}
	st.Ready, st.Reason = judge(versions, st, progress, d.VersionTable())
	return st, nil
}

// inProgress describes a live runner's marker.
func inProgress(r dialect.Record) string {
	s := fmt.Sprintf("version %d in progress (server process %d", r.Version, r.Pid)
	if !r.Started.IsZero() {
		s += ", since " + r.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	if r.Total > 0 {
		s += fmt.Sprintf(", statement %d of %d", min(r.Statement+1, r.Total), r.Total)
	}
	return s + ")"
}

// current is goose's current version: rows come newest id first, and the
// newest row of a version decides whether it is applied.
func current(rows []dialect.VersionRow) int64 {
	seen := make(map[int64]bool, len(rows))
	var cur int64
	for _, r := range rows {
		if seen[r.Version] {
			continue
		}
		seen[r.Version] = true
		if r.IsApplied && r.Version > cur {
			cur = r.Version
		}
	}
	return cur
}

func judge(tableExists bool, st Status, progress string, table dialect.Table) (bool, string) {
	if n := len(st.Interrupted); n > 0 {
		reason := fmt.Sprintf("version %d interrupted half-way (crash marker)", st.Interrupted[0])
		if n > 1 {
			reason += fmt.Sprintf(", and %d more", n-1)
		}
		return false, reason
	}

	switch {
	case st.Need <= 0:
		return true, fmt.Sprintf("at %d, no version needed", st.Current)
	case !tableExists:
		return false, fmt.Sprintf("no %s table yet", table)
	case st.Current < st.Need && progress != "":
		return false, fmt.Sprintf("at %d, need %d: %s", st.Current, st.Need, progress)
	case st.Current < st.Need:
		return false, fmt.Sprintf("at %d, need %d", st.Current, st.Need)
	case st.Current > st.Need:
		return true, fmt.Sprintf("at %d, need %d (ahead)", st.Current, st.Need)
	}
	return true, fmt.Sprintf("at %d, need %d", st.Current, st.Need)
}
