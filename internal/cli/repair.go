package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/migrate"
)

type repairFlags struct {
	run                               runFlags
	resume, restart, markDone, forget bool
	output                            string
}

func newRepairCmd(g *globals) *cobra.Command {
	f := &repairFlags{}
	cmd := &cobra.Command{
		Use:   "repair --resume|--restart|--mark-done|--forget",
		Short: "Settle a NO TRANSACTION migration that was interrupted half-way",
		Long: `A migration that runs outside a transaction (-- +goose NO TRANSACTION)
records how many of its statements completed. When it is interrupted (the
pod was killed, a statement failed), up and down refuse to run and say which
statement it stopped at. Inspect the database, then settle it:

  --resume      run the remaining statements, from the one that was running
  --restart     run all its statements again
  --mark-done   record it as finished (you completed it by hand)
  --forget      clear the marker as if it never ran (you undid it by hand)

A failed CREATE INDEX CONCURRENTLY leaves an INVALID index: "shiplock
status" names it; drop it before --resume or --restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runRepair(cmd.Context(), g) },
	}
	fs := cmd.Flags()
	f.run.register(fs)
	fs.BoolVar(&f.resume, "resume", false, "run the remaining statements")
	fs.BoolVar(&f.restart, "restart", false, "run every statement again")
	fs.BoolVar(&f.markDone, "mark-done", false, "record the migration as finished")
	fs.BoolVar(&f.forget, "forget", false, "clear the marker as if the migration never started")
	fs.StringVarP(&f.output, "output", "o", "text", "result format: text or json")
	return cmd
}

func (f *repairFlags) runRepair(ctx context.Context, g *globals) error {
	var chosen []migrate.RepairAction
	for flag, action := range map[*bool]migrate.RepairAction{&f.resume: migrate.Resume, &f.restart: migrate.Restart, &f.markDone: migrate.MarkDone, &f.forget: migrate.Forget} {
		if *flag {
			chosen = append(chosen, action)
		}
	}
	if len(chosen) != 1 {
		return usagef("repair needs exactly one of --resume, --restart, --mark-done or --forget")
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		res, err := m.Repair(ctx, chosen[0])
		if errors.Is(err, migrate.ErrNothingToRepair) {
			fmt.Fprintln(g.streams.Out, "nothing to repair: no migration was interrupted")
			return &migrate.Result{}, nil
		}
		return res, err
	})
}
