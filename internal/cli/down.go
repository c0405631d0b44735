package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/migrate"
)

type downFlags struct {
	run          runFlags
	to           int64
	output       string
	noVersioning bool
}

func newDownCmd(g *globals) *cobra.Command {
	f := &downFlags{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Revert the newest migration, or every migration newer than --to",
		Long: `Revert migrations by running their Down sections, newest first.

Without --to, down reverts one migration. With --to V it reverts every
applied migration newer than V and is idempotent, which is what a Job
should run ("shiplock down --to 20261101000000"); --to 0 reverts all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runDown(cmd.Context(), g, cmd.Flags().Changed("to"))
		},
	}
	fs := cmd.Flags()
	f.run.register(fs)
	fs.Var(newVersionValue(&f.to), "to", "revert every migration newer than this version (0: all)")
	fs.StringVarP(&f.output, "output", "o", "text", "result format: text or json")
	registerNoVersioning(fs, &f.noVersioning)
	g.registerTimeout(fs)
	return cmd
}

func (f *downFlags) runDown(ctx context.Context, g *globals, toSet bool) error {
	if toSet && f.to < 0 {
		return usagef("--to must be 0 or a version")
	}
	to := int64(-1)
	if toSet {
		to = f.to
	}
	if err := checkNoVersioning(f.noVersioning, &f.run); err != nil {
		return err
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		if f.noVersioning {
			return m.DownUnversioned(ctx, to)
		}
		return m.Down(ctx, to)
	})
}

type redoFlags struct {
	run          runFlags
	output       string
	noVersioning bool
}

func newRedoCmd(g *globals) *cobra.Command {
	f := &redoFlags{}
	cmd := &cobra.Command{
		Use:   "redo",
		Short: "Revert the newest migration and apply it again",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.runRedo(cmd.Context(), g) },
	}
	f.run.register(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "result format: text or json")
	registerNoVersioning(cmd.Flags(), &f.noVersioning)
	g.registerTimeout(cmd.Flags())
	return cmd
}

func (f *redoFlags) runRedo(ctx context.Context, g *globals) error {
	if err := checkNoVersioning(f.noVersioning, &f.run); err != nil {
		return err
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		if f.noVersioning {
			return m.RedoUnversioned(ctx)
		}
		return m.Redo(ctx)
	})
}
