package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/shiplock/shiplock/migrate"
)

// runAccept is "repair --accept-checksum VERSION": record the checksum of
// an applied version's file as it is now.
func (f *repairFlags) runAccept(ctx context.Context, g *globals) error {
	v, err := parseVersion(f.acceptChecksum)
	if err != nil {
		return usagef("--accept-checksum: " + err.Error())
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		acc, err := m.AcceptChecksum(ctx, v)
		if errors.Is(err, migrate.ErrNotApplied) {
			return nil, usagef(err.Error())
		}
		if err != nil {
			return nil, err
		}
		if f.output == "json" {
			writeJSON(g.streams.Out, map[string]any{"version": acc.Version, "file": acc.File, "old_checksum": acc.Old, "new_checksum": acc.New, "changed": acc.Changed})
			return nil, nil
		}
		old := acc.Old
		if old == "" {
			old = "none"
		}
		if !acc.Changed {
			fmt.Fprintf(g.streams.Out, "version %d (%s): the recorded checksum already is the file's (%.12s)\n", acc.Version, acc.File, acc.New)
			return nil, nil
		}
		fmt.Fprintf(g.streams.Out, "version %d (%s): accepted checksum %s (was %s)\n", acc.Version, acc.File, acc.New, old)
		return nil, nil
	})
}
