package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/shiplock/shiplock/dialect"
)

// ErrNotApplied is returned by AcceptChecksum for a version that is not
// applied: there is no checksum to accept.
var ErrNotApplied = errors.New("migrate: version not applied")

// Accepted is what AcceptChecksum did.
type Accepted struct {
	Version int64
	File    string
	// Old is the checksum recorded before ("" when none was: the version
	// was applied by goose); New is the file's, now recorded.
	Old, New string
	// Changed is false when the recorded checksum already was the file's.
	Changed bool
}

// AcceptChecksum records the checksum of version's file as it is now, for
// a version that is applied: the deliberate way out of an "edited" finding
// when the file was reformatted or changed on purpose, instead of
// --ignore-checksums on every run. It runs under the migration lock, logs
// the old and new checksums, and changes nothing else: the database is not
// migrated again.
//
// It fails with ErrNotApplied for a version that is not applied, a
// *FileError when no file (or a Go migration, which has no checksum) has
// that version, and an *IntegrityError when the version was interrupted
// half-way (settle that with Repair first).
func (m *Migrator) AcceptChecksum(ctx context.Context, version int64) (*Accepted, error) {
	mig := m.byVersion[version]
	switch {
	case mig == nil:
		return nil, &FileError{File: fmt.Sprintf("version %d", version), Msg: "no migration file has this version"}
	case mig.Checksum == "":
		return nil, &FileError{File: mig.Source, Msg: "is a Go migration: it has no checksum"}
	}
	conn, st, release, err := m.lockedState(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	for _, p := range m.problems(st) {
		if p.Kind == Interrupted && p.Version == version {
			return nil, &IntegrityError{Problems: []Problem{p}}
		}
	}
	if _, ok := st.applied[version]; !ok {
		return nil, fmt.Errorf("%w: version %d (%s) has no checksum to accept", ErrNotApplied, version, mig.Source)
	}
	if !st.recordTableExists {
		if err := m.dialect.EnsureRecordTable(ctx, conn); err != nil {
			return nil, fmt.Errorf("create %s: %w", recordsTable(m.dialect), err)
		}
	}
	rec := st.records[version]
	res := &Accepted{Version: version, File: mig.Source, Old: rec.Checksum, New: mig.Checksum}
	if rec.Checksum == mig.Checksum && rec.State == dialect.StateApplied {
		return res, nil
	}
	if err := m.dialect.PutRecord(ctx, conn, m.record(mig, dialect.StateApplied, 0)); err != nil {
		return nil, fmt.Errorf("record checksum of %s: %w", mig.Source, err)
	}
	res.Changed = true
	m.log.Warn("accepted the checksum of an applied migration's file as it is now", "version", version, "file", mig.Source, "old_checksum", rec.Checksum, "new_checksum", mig.Checksum)
	return res, nil
}
