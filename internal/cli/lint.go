package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/lint"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

type lintFlags struct {
	since   int64
	gitBase string
	format  string
	failOn  string
	disable []string
	noSCS   bool
}

func newLintCmd(g *globals) *cobra.Command {
	f := &lintFlags{}
	cmd := &cobra.Command{
		Use:   "lint",
		Short: "Check migration files for locking, rewrite and rolling-update hazards (static, PostgreSQL)",
		Long: `Check the migration files for statements that lock busy tables, rewrite them,
or break the pods of the previous release during a rolling update. Static:
no database is needed (see docs/safety.md for every rule and its safe rewrite).

Files at or before a baseline are taken as applied: the tables they create
exist, and they are not checked. Files after it are new in this release: a
table they create is new, so a plain CREATE INDEX on it is fine. The baseline
is --since V, or the files present in --git-base REF, or the versions applied
in the database when --database-url is given on the command line (read only).
Without one, every file is new and only tables that no file creates are taken
to exist; the assumption used is printed on stderr.

Suppress a finding with a comment on or before the statement, with a reason:
  -- shiplock:ignore drop-column the app stopped reading it in v41

The rules are PostgreSQL's (its locks, rewrites and syntax). On MySQL and
MariaDB they do not apply as written: lint knows no MySQL rules, so a clean
lint says nothing about a MySQL migration.

Exit 3 when a finding reaches --fail-on (default error), 0 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), g, cmd.Flag("database-url").Changed)
		},
	}
	fs := cmd.Flags()
	fs.Var(newVersionValue(&f.since), "since", "baseline: files up to and including this version are already applied")
	fs.StringVar(&f.gitBase, "git-base", "", "baseline: the migration files present in this git revision are already applied")
	fs.StringVarP(&f.format, "output", "o", "text", "output format: text, json, sarif or github (workflow annotations)")
	fs.StringVar(&f.failOn, "fail-on", "error", "exit 3 when a finding has this severity or higher: error, warning, info or none")
	fs.StringSliceVar(&f.disable, "disable", nil, "rule ids not to report (comma-separated)")
	fs.BoolVar(&f.noSCS, "no-standard-conforming-strings", false, "read backslashes in '' strings as escapes (the server runs with standard_conforming_strings = off)")
	return cmd
}

func (f *lintFlags) run(ctx context.Context, g *globals, fromDB bool) error {
	switch f.format {
	case "text", "json", "sarif", "github":
	default:
		return usagef(fmt.Sprintf("--output %q: want text, json, sarif or github", f.format))
	}
	threshold, err := failThreshold(f.failOn)
	if err != nil {
		return err
	}
	for _, id := range f.disable {
		if _, ok := lint.Lookup(id); !ok {
			return usagef(fmt.Sprintf("--disable: unknown rule %q", id))
		}
	}
	n := 0
	for _, set := range []bool{f.since > 0, f.gitBase != "", fromDB} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usagef("--since, --git-base and --database-url each set the baseline: give one")
	}
	migs, err := g.loadMigrations()
	if err != nil {
		return err
	}
	var applied func(*migrate.Migration) bool
	var baseline string
	switch {
	case f.since > 0:
		applied = func(m *migrate.Migration) bool { return m.Version <= f.since }
		baseline = fmt.Sprintf("files up to version %d are applied (--since)", f.since)
	case f.gitBase != "":
		in, err := gitFiles(ctx, g.dir, f.gitBase)
		if err != nil {
			return err
		}
		applied = func(m *migrate.Migration) bool { return in[m.Source] }
		baseline = fmt.Sprintf("files present in %s are applied (--git-base)", f.gitBase)
	case fromDB:
		versions := map[int64]bool{}
		err := g.withMigrator(ctx, migrate.Options{}, nil, func(m *migrate.Migrator) error {
			st, err := m.Status(ctx)
			if err != nil {
				return err
			}
			for _, v := range st.Versions {
				if v.State == migrate.Applied {
					versions[v.Version] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		warnRulesArePostgres(g, "lint")
		applied = func(m *migrate.Migration) bool { return versions[m.Version] }
		baseline = fmt.Sprintf("the %d versions applied in the database are applied (--database-url)", len(versions))
	default:
		applied = func(*migrate.Migration) bool { return false }
		baseline = "no baseline: every file is new in this release, and only tables no file creates are taken to exist (set --since, --git-base or --database-url)"
	}
	rep, err := lintMigrations(g, migs, applied, lint.Options{Disable: f.disable, NoStandardConformingStrings: f.noSCS})
	if err != nil {
		return err
	}
	out := g.streams.Out
	switch f.format {
	case "json":
		err = lint.WriteJSON(out, rep, baseline)
	case "sarif":
		err = lint.WriteSARIF(out, rep.Findings)
	case "github":
		err = lint.WriteGitHub(out, rep.Findings)
	default:
		err = lint.WriteText(out, rep.Findings)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Err, "lint: %d files checked of %d, %d findings, %d suppressed; baseline: %s\n",
		rep.Checked, rep.Read, len(rep.Findings), rep.Suppressed, baseline)
	if threshold > 0 && rep.Max() >= threshold {
		return &exitError{code: exitcode.BadFile}
	}
	return nil
}

// failThreshold reads --fail-on; "none" is 0 (never fail).
func failThreshold(s string) (lint.Severity, error) {
	if s == "none" {
		return 0, nil
	}
	sev, err := lint.ParseSeverity(s)
	if err != nil {
		return 0, usagef("--fail-on: " + err.Error() + " or none")
	}
	return sev, nil
}

// lintMigrations checks the SQL migrations that applied does not mark:
// those are read from disk again for their shiplock:ignore comments; the
// applied ones are given as parsed, for the tables they create.
func lintMigrations(g *globals, migs []*migrate.Migration, applied func(*migrate.Migration) bool, o lint.Options) (*lint.Report, error) {
	o.Lookup = g.envLookup
	in := make([]lint.Input, 0, len(migs))
	for _, m := range migs {
		if m.Kind != migrate.KindSQL {
			continue
		}
		name := filepath.Join(g.dir, m.Source)
		if applied(m) {
			in = append(in, lint.Input{Name: name, Version: m.Version, Applied: true,
				Parsed: &sqlfile.File{Up: m.Statements(migrate.Up), NoTransaction: m.NoTx}})
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, &migrate.FileError{File: name, Msg: "read: " + errors.Unwrap(err).Error()}
		}
		in = append(in, lint.Input{Name: name, Version: m.Version, Src: src})
	}
	return lint.Check(in, o)
}

// gitFiles lists the file names in dir at revision rev (git ls-tree, run
// in dir).
func gitFiles(ctx context.Context, dir, rev string) (map[string]bool, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "ls-tree", "--name-only", rev, "--", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, usagef(fmt.Sprintf("--git-base %s: git ls-tree: %v: %s", rev, err, strings.TrimSpace(stderr.String())))
	}
	files := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			files[filepath.Base(l)] = true
		}
	}
	return files, nil
}

// warnRulesArePostgres logs, when the database is not PostgreSQL, that
// lint's rules do not speak for it: a clean result would read as safe.
func warnRulesArePostgres(g *globals, who string) {
	if d, ok := g.classifier.(interface{ Name() string }); ok && d.Name() != "postgres" {
		g.log.Warn(who + ": lint's rules are PostgreSQL's; on " + d.Name() + " they do not apply as written, and a clean result says nothing about these files")
	}
}

// safetyCheck is up's --check-safety: the static lint of the pending files,
// with the files before them as the baseline. Findings go to the log; in
// "error" mode an error finding refuses the run (exit 3) before anything
// is applied.
func safetyCheck(g *globals, mode string, all []*migrate.Migration) func([]*migrate.Migration) error {
	return func(pending []*migrate.Migration) error {
		warnRulesArePostgres(g, "check-safety")
		todo := make(map[*migrate.Migration]bool, len(pending))
		for _, m := range pending {
			todo[m] = true
		}
		rep, err := lintMigrations(g, all, func(m *migrate.Migration) bool { return !todo[m] }, lint.Options{})
		if err != nil {
			return err
		}
		var errs int
		for _, f := range rep.Findings {
			if f.Severity == lint.Error {
				errs++
			}
			g.log.Warn("check-safety: "+f.Message, "file", f.File, "line", f.Line, "rule", f.Rule, "severity", f.Severity.String(), "fix", f.Fix)
		}
		if mode == "error" && errs > 0 {
			return &exitError{code: exitcode.BadFile, msg: fmt.Sprintf("--check-safety=error: %d error finding(s) in the %d pending file(s), nothing applied; fix them (see `shiplock lint`) or suppress each with -- shiplock:ignore RULE reason", errs, len(pending))}
		}
		return nil
	}
}
