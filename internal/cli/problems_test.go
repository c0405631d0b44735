package cli

import (
	"fmt"
	"testing"
	"time"

	"github.com/shiplock/shiplock/migrate"
)

// TestDescribeProblem: every kind of problem, worded as shiplock printed it
// when the library wrote the advice itself (the expected texts are that
// code's output), so moving the words to the CLI changed no byte.
func TestDescribeProblem(t *testing.T) {
	since := time.Date(2026, 11, 29, 4, 5, 6, 0, time.UTC)
	for _, c := range []struct {
		p    migrate.Problem
		want string
	}{
		{migrate.Problem{Kind: migrate.Edited, Version: 3, File: "00003_c.sql", Recorded: "aaaaaaaaaaaaaaaaaaaa", Actual: "bbbbbbbbbbbbbbbbbbbbbbb"},
			"00003_c.sql: version 3 was edited after it was applied (checksum bbbbbbbbbbbb, applied aaaaaaaaaaaa); if on purpose, \"shiplock repair --accept-checksum 3\" records the file as it is"},
		{migrate.Problem{Kind: migrate.MissingFile, Version: 4},
			"version 4 is applied but has no migration file (no file): the database is ahead of these files"},
		{migrate.Problem{Kind: migrate.MissingFile, Version: 4, File: "00004_d.sql"},
			"version 4 is applied but has no migration file (00004_d.sql): the database is ahead of these files"},
		{migrate.Problem{Kind: migrate.OutOfOrder, Version: 2, File: "00002_b.sql"},
			"00002_b.sql: version 2 is pending but older than the newest applied version"},
		{migrate.Problem{Kind: migrate.Unrecorded, Version: 1, File: "00001_a.sql"},
			"00001_a.sql: version 1 was applied without shiplock; its checksum is recorded by the next up (even with nothing to apply)"},
		{migrate.Problem{Kind: migrate.InvalidIndex, File: "public.t_id"},
			"index public.t_id is INVALID (a CREATE INDEX CONCURRENTLY failed); drop it and apply the migration again"},
		{migrate.Problem{Kind: migrate.InProgress, NoTx: true, Version: 5, File: "00005_e.sql", Direction: migrate.Down, Pid: 42, Since: since, Completed: 1, Total: 3},
			"00005_e.sql: version 5 (NO TRANSACTION) is in progress (reverting by server process 42, since 2026-11-29 04:05:06 UTC, statement 2 of 3)"},
		{migrate.Problem{Kind: migrate.InProgress, NoTx: true, Version: 5, File: "00005_e.sql", Pid: 42, Completed: 3, Total: 3},
			"00005_e.sql: version 5 (NO TRANSACTION) is in progress (applying by server process 42, statement 3 of 3)"},
		{migrate.Problem{Kind: migrate.Uncertain, NoTx: true, Version: 5, File: "00005_e.sql", Line: 4, Pid: 42, Completed: 1, Total: 3, InFlight: true, Statement: "INSERT INTO items VALUES (2)"},
			"00005_e.sql:4: version 5 (NO TRANSACTION): statement 2 of 3 was running when its runner (server process 42) stopped, and the database cannot tell whether it took effect: INSERT INTO items VALUES (2)\n    check the database, then run \"shiplock repair --resume\" if it did not take effect (it runs again), or \"shiplock repair --skip\" if it did"},
		{migrate.Problem{Kind: migrate.Interrupted, NoTx: true, Version: 5, File: "00005_e.sql", Line: 4, Pid: 42, Completed: 1, Total: 3},
			"00005_e.sql: version 5 (NO TRANSACTION) was interrupted while applying, after 1 of 3 statements, next at line 4; \"shiplock up\" resumes it (or settle it with \"shiplock repair\")"},
		{migrate.Problem{Kind: migrate.Interrupted, NoTx: true, Version: 5, File: "00005_e.sql", Pid: 42, Completed: 1, Total: 3},
			"00005_e.sql: version 5 (NO TRANSACTION) was interrupted while applying, after 1 of 3 statements; \"shiplock up\" resumes it (or settle it with \"shiplock repair\")"},
		{migrate.Problem{Kind: migrate.Interrupted, NoTx: true, Version: 5, File: "00005_e.sql", Direction: migrate.Down, Line: 7, Completed: 2, Total: 3, InFlight: true},
			"00005_e.sql: version 5 (NO TRANSACTION) was interrupted while reverting, after 2 of 3 statements, next at line 7; statement 3 was running when its runner stopped: \"shiplock down\" resumes it where the catalog tells whether it took effect, otherwise asks \"shiplock repair --resume\" (it did not) or \"--skip\" (it did) (or settle it with \"shiplock repair\")"},
		{migrate.Problem{Kind: migrate.Interrupted, NoTx: true, Version: 5, File: "00005_e.sql", Line: 7, Completed: 2, Total: 3, InFlight: true, Changed: true},
			"00005_e.sql: version 5 (NO TRANSACTION) was interrupted while applying, after 2 of 3 statements, next at line 7, and the file changed since: resuming could run other statements than the ones counted; restore the file, or inspect the database and run \"shiplock repair --force\" with --resume, --skip or --restart (or --mark-done, --forget)"},
		// A MySQL file holding DDL (or any file run statement by statement
		// without saying NO TRANSACTION) is not called NO TRANSACTION.
		{migrate.Problem{Kind: migrate.Interrupted, Version: 6, File: "00006_f.sql", Line: 3, Completed: 1, Total: 2},
			"00006_f.sql: version 6 (run statement by statement) was interrupted while applying, after 1 of 2 statements, next at line 3; \"shiplock up\" resumes it (or settle it with \"shiplock repair\")"},
	} {
		if got := describeProblem(c.p); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.p.Kind, got, c.want)
		}
	}
}

// TestDescribeError: the library's errors that come with something to run,
// worded by the CLI wherever they sit in the chain (inside a PartialError,
// a MigrationError, fmt.Errorf's %w), the wrappers' words kept. The
// expected texts are what the library wrote before the words moved.
func TestDescribeError(t *testing.T) {
	edited := migrate.Problem{Kind: migrate.Edited, Version: 3, File: "00003_c.sql", Recorded: "aaaaaaaaaaaaaaaaaaaa", Actual: "bbbbbbbbbbbbbbbbbbbbbbb"}
	missing := migrate.Problem{Kind: migrate.MissingFile, Version: 4}
	for _, c := range []struct {
		name         string
		err          error
		goMigrations bool
		want         string
	}{
		{"integrity, wrapped twice", fmt.Errorf("repair: %w", &migrate.PartialError{Applied: []migrate.MigrationResult{{Version: 1}, {Version: 2}}, Err: &migrate.IntegrityError{Problems: []migrate.Problem{edited, missing}}}), false,
			"repair: migrate: integrity check failed:\n  00003_c.sql: version 3 was edited after it was applied (checksum bbbbbbbbbbbb, applied aaaaaaaaaaaa); if on purpose, \"shiplock repair --accept-checksum 3\" records the file as it is\n  version 4 is applied but has no migration file (no file): the database is ahead of these files (after applied 2: 1, 2)"},
		{"other version table", &migrate.OtherVersionTableError{Table: "migr_versions"}, false,
			"goose_db_version does not exist, but goose version table migr_versions does: pass --table migr_versions (or, when it is another application's, start goose_db_version anyway by naming it with its schema: --table SCHEMA.goose_db_version); nothing was applied"},
		{"unregistered", &migrate.UnregisteredError{Version: 2, File: "00002_seed.go"}, false,
			"00002_seed.go: version 2 is a Go migration that is not registered in this binary; build a shiplock with it compiled in (README, \"Go migrations\"), or run it through the migrate library in the application (nothing was applied)"},
		{"unregistered, Go migrations compiled in", &migrate.UnregisteredError{Version: 2, File: "00002_seed.go"}, true,
			"00002_seed.go: version 2 is a Go migration that is not registered with goose (goose.AddMigrationContext in an init of a package your main imports) (nothing was applied)"},
		{"interrupted, file gone", &migrate.FileError{File: "00002_b.sql", Msg: "version 2 was interrupted but its file is not here", Reason: migrate.InterruptedFileGone}, false,
			"00002_b.sql: version 2 was interrupted but its file is not here; only --forget works without it"},
		{"NO TRANSACTION in mode all", &migrate.FileError{File: "00002_b.sql", Msg: "is NO TRANSACTION and cannot run in transaction mode \"all\"", Reason: migrate.NotInOneTransaction}, false,
			"00002_b.sql: is NO TRANSACTION and cannot run in transaction mode \"all\"; use --tx-mode file"},
		{"invalid index in a migration error", &migrate.PartialError{Err: &migrate.MigrationError{Version: 3, File: "00003_idx.sql", Line: 2, Err: &migrate.InvalidIndexError{Index: "public.t_id"}}}, false,
			"00003_idx.sql:2: apply version 3: index public.t_id is INVALID (an earlier CREATE INDEX CONCURRENTLY failed, and IF NOT EXISTS skipped it); shiplock up drops and builds it again"},
		{"plain file error", &migrate.FileError{File: "x.sql", Msg: "is a directory"}, false, "x.sql: is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := describeError(c.err, c.goMigrations); got != c.want {
				t.Errorf("\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
