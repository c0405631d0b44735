package cli

import (
	"context"
	"database/sql"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/migrate"
)

type statusFlags struct {
	output       string
	exitCode     bool
	wait         waitFlags
	noVersioning bool
}

func newStatusCmd(g *globals) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every migration and whether it is applied (read-only)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), g) },
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, json, or goose (goose status's layout, on stderr as goose prints it)")
	cmd.Flags().BoolVar(&f.exitCode, "exit-code", false, "exit 8 when migrations are pending")
	f.wait.register(cmd.Flags(), 0)
	g.registerTimeout(cmd.Flags())
	cmd.Flags().BoolVar(&f.noVersioning, "no-versioning", false, "goose's -no-versioning: list the files only, reading no database (table or goose output)")
	return cmd
}

func (f *statusFlags) run(ctx context.Context, g *globals) error {
	if f.output != "table" && f.output != "json" && f.output != "goose" {
		return usagef(fmt.Sprintf("--output %q: want table, json or goose", f.output))
	}
	if f.noVersioning {
		return f.runUnversioned(g)
	}
	return g.withMigrator(ctx, migrate.Options{}, &f.wait, func(m *migrate.Migrator) error {
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		if t := st.OtherVersionTable; t != "" {
			fmt.Fprintf(g.streams.Err, "warning: goose_db_version does not exist, but goose version table %s does: its versions are not shown; pass --table %s\n", t, t)
		}
		if f.output == "goose" {
			printGooseStatus(g.streams.Err, gooseRows(st))
		} else if f.output == "json" {
			writeJSON(g.streams.Out, newStatusJSON(st))
		} else {
			w := tabwriter.NewWriter(g.streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSTATE\tAPPLIED AT\tFILE")
			for _, v := range st.Versions {
				at := "-"
				if !v.AppliedAt.IsZero() {
					at = v.AppliedAt.UTC().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Version, v.State, at, v.Source)
			}
			w.Flush()
			fmt.Fprintf(g.streams.Out, "current version %d, latest file %d, %s pending\n", st.Current, st.Latest, plural(st.Pending, "migration"))
			for _, p := range st.Problems {
				fmt.Fprintf(g.streams.Out, "%s: %s\n", p.Kind, describeProblem(p))
			}
		}
		if f.exitCode && st.Pending > 0 {
			return &exitError{code: exitcode.Pending}
		}
		return nil
	})
}

func newVersionCmd(g *globals) *cobra.Command {
	var noVersioning bool
	var client bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the database's current schema version (read-only), as goose version does",
		Long: `Print the database's current schema version, as "goose version" does: the
highest applied migration, 0 for none. It reads the database and takes no lock.

shiplock's own version (module version, commit, Go version) is
"shiplock --version" or "shiplock version --client", which need no database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if client {
				_, err := fmt.Fprint(g.streams.Out, buildVersion())
				return err
			}
			if noVersioning {
				// goose's version -no-versioning: the newest file's.
				migs, err := g.loadMigrations()
				if err != nil {
					return err
				}
				v := int64(0)
				if len(migs) > 0 {
					v = migs[len(migs)-1].Version
				}
				fmt.Fprintln(g.streams.Out, v)
				return nil
			}
			return g.withMigrator(cmd.Context(), migrate.Options{}, nil, func(m *migrate.Migrator) error {
				st, err := m.Status(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintln(g.streams.Out, st.Current)
				return nil
			})
		},
	}
	g.registerTimeout(cmd.Flags())
	cmd.Flags().BoolVar(&noVersioning, "no-versioning", false, "goose's -no-versioning: print the newest file's version, reading no database")
	cmd.Flags().BoolVar(&client, "client", false, "print shiplock's own version instead (as shiplock --version); no database")
	return cmd
}

type planFlags struct {
	engine engineFlags
	wait   waitFlags
	down   bool
	to     int64
	locks  lockFlags
}

func newPlanCmd(g *globals) *cobra.Command {
	f := &planFlags{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the pending migrations and their exact SQL, touching nothing",
		Long: `Print what "up" (or "down" with --down) would run now: each migration and the
exact statements, in order. plan reads the database but takes no lock and
changes nothing.` + planLocksHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), g, cmd.Flags().Changed("to")) },
	}
	f.engine.register(cmd.Flags())
	f.wait.register(cmd.Flags(), 0)
	cmd.Flags().BoolVar(&f.down, "down", false, "plan a down instead of an up")
	cmd.Flags().Var(newVersionValue(&f.to), "to", "target version, as for up --to or down --to")
	g.registerTimeout(cmd.Flags())
	f.locks.register(cmd.Flags())
	return cmd
}

func (f *planFlags) run(ctx context.Context, g *globals, toSet bool) error {
	opts, err := f.engine.options(g)
	if err != nil {
		return err
	}
	if f.locks.on {
		if f.down {
			return usagef("plan --locks traces an up; --down cannot be traced")
		}
		if f.locks.output != "text" && f.locks.output != "json" {
			return usagef(fmt.Sprintf("--output %q: want text or json", f.locks.output))
		}
		// Before any connection: the trace reads PostgreSQL's lock table.
		if t, err := g.resolveTarget(); err == nil && t.dialect != "postgres" {
			return errLocksPostgresOnly
		}
		return g.withTarget(ctx, opts, &f.wait, func(m *migrate.Migrator, db *sql.DB, t target) error {
			return f.locks.run(ctx, g, m, db, t, f.to)
		})
	}
	if f.locks.shadowURL != "" || f.locks.shadowTemp || len(f.locks.failOn) > 0 || f.locks.output != "text" {
		return usagef("--shadow-url, --shadow-temp, --fail-on and --output go with --locks")
	}
	return g.withMigrator(ctx, opts, &f.wait, func(m *migrate.Migrator) error {
		dir, downTo := migrate.Up, int64(-1)
		if f.down {
			dir = migrate.Down
			if toSet {
				downTo = f.to
			}
		}
		todo, err := m.Plan(ctx, dir, migrate.UpOptions{To: f.to}, downTo)
		if err != nil {
			return err
		}
		// A planned migration that stopped half-way is not run from its
		// first statement: say where up stands with it, as status does.
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		marks := make(map[int64]migrate.Problem)
		for _, p := range st.Problems {
			switch p.Kind {
			case migrate.Interrupted, migrate.Uncertain, migrate.InProgress:
				marks[p.Version] = p
			}
		}
		out := g.streams.Out
		if len(todo) == 0 {
			fmt.Fprintln(out, "-- nothing to do")
			return nil
		}
		for _, mig := range todo {
			tx := "in a transaction"
			switch {
			case mig.NoTx || opts.TxMode == migrate.TxNone:
				tx = "no transaction"
			case opts.TxMode == migrate.TxAll:
				tx = "in the run's single transaction"
			case commitsItself(g.classifier, mig, dir):
				tx = "statement by statement, each recorded: its DDL commits by itself"
			}
			fmt.Fprintf(out, "-- %s %d %s (%s)\n", dir, mig.Version, mig.Source, tx)
			if p, ok := marks[mig.Version]; ok {
				fmt.Fprintf(out, "-- %s: %s (see shiplock status)\n", p.Kind, g.redact(p.String()))
			}
			if mig.Kind != migrate.KindSQL {
				fmt.Fprintln(out, "-- Go migration")
				continue
			}
			for _, s := range mig.Statements(dir) {
				// The SQL may hold a password: a literal, or a
				// secret ENVSUB expanded.
				fmt.Fprintf(out, "%s\n", g.redact(s.SQL))
			}
			fmt.Fprintln(out)
		}
		return nil
	})
}

type verifyFlags struct {
	output string
	wait   waitFlags
}

func newVerifyCmd(g *globals) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check applied migrations against the files: edited, missing, out of order (exit 4)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), g) },
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	f.wait.register(cmd.Flags(), 0)
	g.registerTimeout(cmd.Flags())
	return cmd
}

func (f *verifyFlags) run(ctx context.Context, g *globals) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	return g.withMigrator(ctx, migrate.Options{}, &f.wait, func(m *migrate.Migrator) error {
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		problems := st.Problems
		failing, unrecorded := 0, 0
		for _, p := range problems {
			switch p.Kind {
			case migrate.Unrecorded:
				unrecorded++
			case migrate.InProgress:
				// Being applied, not broken.
			default:
				failing++
			}
		}
		if f.output == "json" {
			writeJSON(g.streams.Out, map[string]any{"ok": failing == 0, "problems": problemsJSON(problems)})
		} else {
			for _, p := range problems {
				fmt.Fprintf(g.streams.Out, "%s: %s\n", p.Kind, describeProblem(p))
			}
			if failing == 0 {
				fmt.Fprintln(g.streams.Out, verifiedText(m, st, unrecorded))
			}
		}
		if failing > 0 {
			return &exitError{code: exitcode.Integrity}
		}
		return nil
	})
}

// verifiedText is verify's "ok" line: how many applied migrations were
// checked against their files, and how many could not be yet.
func verifiedText(m *migrate.Migrator, st *migrate.Status, unrecorded int) string {
	sums := map[int64]bool{}
	for _, mig := range m.Migrations() {
		sums[mig.Version] = mig.Checksum != ""
	}
	checked, goMigs := 0, 0
	for _, v := range st.Versions {
		switch {
		case v.State != migrate.Applied:
		case sums[v.Version]:
			checked++
		default:
			goMigs++
		}
	}
	checked -= unrecorded
	msg := "ok: " + plural(checked, "applied migration") + " match their files"
	if checked == 1 {
		msg = "ok: 1 applied migration matches its file"
	}
	if unrecorded > 0 {
		msg += fmt.Sprintf("; %d applied before checksums were kept (recorded by the next up)", unrecorded)
	}
	if goMigs > 0 {
		msg += fmt.Sprintf("; %s (no checksum)", plural(goMigs, "Go migration"))
	}
	return msg
}

// commitsItself reports whether a statement of mig's SQL commits the
// transaction around it by itself (MySQL's DDL), so that up runs the file
// statement by statement with progress records rather than in a
// transaction.
func commitsItself(d any, mig *migrate.Migration, dir migrate.Direction) bool {
	ic, ok := d.(interface{ ImplicitCommit(string) bool })
	if !ok || mig.Kind != migrate.KindSQL {
		return false
	}
	for _, s := range mig.Statements(dir) {
		if ic.ImplicitCommit(s.SQL) {
			return true
		}
	}
	return false
}
