package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/migrate"
)

type repairFlags struct {
	run                                     runFlags
	resume, skip, restart, markDone, forget bool
	force                                   bool
	output                                  string
	acceptChecksum                          string
}

func newRepairCmd(g *globals) *cobra.Command {
	f := &repairFlags{}
	cmd := &cobra.Command{
		Use:   "repair --resume|--skip|--restart|--mark-done|--forget|--accept-checksum V",
		Short: "Settle a migration run statement by statement (NO TRANSACTION; MySQL DDL) that was interrupted half-way, or accept an edited file's checksum",
		Long: `A migration that runs statement by statement (-- +goose NO TRANSACTION,
--tx-mode none, and on MySQL and MariaDB a file holding DDL, which commits
by itself) records each statement as started before sending it and as
done after, with its runner's server process. While that runner holds the
migration lock the migration is "in progress": up waits for it, status,
verify, check and await report it. When the runner is gone (the pod was
killed, a statement failed, SIGTERM), up resumes it by itself: after the
last statement done, or, for a statement that was running when the runner
died, once that statement's server process has ended and only where the
catalog tells whether it took effect (CREATE INDEX CONCURRENTLY: a valid
index is done, an INVALID one is dropped and built again; IF [NOT] EXISTS,
CREATE OR REPLACE and ALTER TYPE ... ADD VALUE IF NOT EXISTS run again;
on MySQL and MariaDB, information_schema tells for CREATE and DROP of a
table, view or index, RENAME TABLE, and ALTER TABLE adding, dropping or
renaming a column, an index or a named constraint).
Otherwise up stops (exit 4) naming the statement and its line; inspect the
database, then settle it:

  --resume      it did not take effect: run it and the remaining statements
  --skip        it took effect: record it as done and run the remaining ones
  --restart     run all the migration's statements again
  --mark-done   record the migration as finished (you completed it by hand)
  --forget      clear the marker as if it never ran (you undid it by hand)

--resume, --skip and --restart refuse a file changed since the migration
was interrupted, unless --force.

  --accept-checksum V  record the checksum of applied version V's file as
                it is now (it was reformatted or edited on purpose), so up
                and verify stop reporting it as edited (exit 4); logs the
                old and new checksums. Line endings never count: a file
                converted between CRLF and LF is not edited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runRepair(cmd.Context(), g) },
	}
	fs := cmd.Flags()
	f.run.register(fs)
	fs.BoolVar(&f.resume, "resume", false, "run the interrupted statement again (it did not take effect) and the remaining ones")
	fs.BoolVar(&f.skip, "skip", false, "record the interrupted statement as done (it took effect) and run the remaining ones")
	fs.BoolVar(&f.force, "force", false, "with --resume, --skip or --restart: run although the file changed since the interruption")
	fs.BoolVar(&f.restart, "restart", false, "run every statement again")
	fs.BoolVar(&f.markDone, "mark-done", false, "record the migration as finished")
	fs.BoolVar(&f.forget, "forget", false, "clear the marker as if the migration never started")
	fs.StringVar(&f.acceptChecksum, "accept-checksum", "", "record the current checksum of applied version `VERSION`'s file (reformatted or edited on purpose)")
	fs.StringVarP(&f.output, "output", "o", "text", "result format: text or json")
	g.registerTimeout(fs)
	return cmd
}

func (f *repairFlags) runRepair(ctx context.Context, g *globals) error {
	var chosen []migrate.RepairAction
	for flag, action := range map[*bool]migrate.RepairAction{&f.resume: migrate.Resume, &f.skip: migrate.Skip, &f.restart: migrate.Restart, &f.markDone: migrate.MarkDone, &f.forget: migrate.Forget} {
		if *flag {
			chosen = append(chosen, action)
		}
	}
	if f.acceptChecksum != "" && len(chosen) == 0 {
		return f.runAccept(ctx, g)
	}
	if len(chosen) != 1 || f.acceptChecksum != "" {
		return usagef("repair needs exactly one of --resume, --skip, --restart, --mark-done, --forget or --accept-checksum")
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		res, err := m.Repair(ctx, chosen[0], migrate.RepairOptions{Force: f.force})
		if errors.Is(err, migrate.ErrNothingToRepair) {
			return res, nil // the summary says so
		}
		return res, err
	})
}
