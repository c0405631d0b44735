package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/shiplock/shiplock/migrate"
)

// The library reports facts (migrate.Problem, typed errors) and says
// nothing about shiplock's commands; this file words them for the
// operator: each fact as the library states it, then what to run about it.

// describeProblem is p as the library states it, followed by what to run
// about it.
func describeProblem(p migrate.Problem) string {
	s := p.String()
	switch p.Kind {
	case migrate.Edited:
		s += fmt.Sprintf("; if on purpose, \"shiplock repair --accept-checksum %d\" records the file as it is", p.Version)
	case migrate.Unrecorded:
		s += "; its checksum is recorded by the next up (even with nothing to apply)"
	case migrate.InvalidIndex:
		s += "; drop it and apply the migration again"
	case migrate.Uncertain:
		s += "\n    check the database, then run \"shiplock repair --resume\" if it did not take effect (it runs again), or \"shiplock repair --skip\" if it did"
	case migrate.Interrupted:
		switch {
		case p.Changed:
			s += ": resuming could run other statements than the ones counted; restore the file, or inspect the database and run \"shiplock repair --force\" with --resume, --skip or --restart (or --mark-done, --forget)"
		case p.InFlight:
			s += fmt.Sprintf(": \"shiplock %s\" resumes it where the catalog tells whether it took effect, otherwise asks \"shiplock repair --resume\" (it did not) or \"--skip\" (it did) (or settle it with \"shiplock repair\")", p.Direction)
		default:
			s += fmt.Sprintf("; \"shiplock %s\" resumes it (or settle it with \"shiplock repair\")", p.Direction)
		}
	}
	return s
}

// describeError is err's message with the library's facts in err's chain
// worded by wordError: each one's own message is replaced by its wording
// inside the messages of the errors that wrap it, whose words
// (fmt.Errorf("read x: %w"), a PartialError's "(after applied 2: ...)")
// stay as they are. goMigrations says this binary has Go migrations
// compiled in (shiplockmain).
func describeError(err error, goMigrations bool) string {
	if s, ok := wordError(err, goMigrations); ok {
		return s
	}
	msg := err.Error()
	var inner []error
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			inner = []error{e}
		}
	case interface{ Unwrap() []error }:
		inner = u.Unwrap()
	}
	for _, e := range inner {
		// A wrapper's message holds its cause's (%w, %v); substituting
		// there is rendering, not reading meaning from text.
		if own, worded := e.Error(), describeError(e, goMigrations); worded != own {
			msg = strings.Replace(msg, own, worded, 1)
		}
	}
	return msg
}

// wordError words the library errors that come with something to run.
func wordError(err error, goMigrations bool) (string, bool) {
	switch e := err.(type) {
	case *migrate.IntegrityError:
		return e.Text(describeProblem), true
	case *migrate.OtherVersionTableError:
		return fmt.Sprintf("goose_db_version does not exist, but goose version table %s does: pass --table %s (or, when it is another application's, start goose_db_version anyway by naming it with its schema: --table SCHEMA.goose_db_version); nothing was applied", e.Table, e.Table), true
	case *migrate.UnregisteredError:
		if goMigrations {
			// The binary has Go migrations compiled in, just not this one:
			// say where goose's registration goes.
			return fmt.Sprintf("%s: version %d is a Go migration that is not registered with goose (goose.AddMigrationContext in an init of a package your main imports) (nothing was applied)", e.File, e.Version), true
		}
		return fmt.Sprintf("%s: version %d is a Go migration that is not registered in this binary; build a shiplock with it compiled in (README, \"Go migrations\"), or run it through the migrate library in the application (nothing was applied)", e.File, e.Version), true
	case *migrate.FileError:
		switch e.Reason {
		case migrate.NotInOneTransaction:
			return e.Error() + "; use --tx-mode file", true
		case migrate.InterruptedFileGone:
			return e.Error() + "; only --forget works without it", true
		}
	case *migrate.ImplicitCommitError:
		// The advice goes before the statement, which may span lines.
		return strings.Replace(e.Error(), "cannot run in transaction mode all:", "cannot run in transaction mode all (use --tx-mode file, the default: it runs such a file statement by statement, each statement recorded):", 1), true
	case *migrate.InvalidIndexError:
		return e.Error() + "; shiplock up drops and builds it again", true
	}
	return "", false
}

// problemJSON is a problem in status -o json and verify -o json.
type problemJSON struct {
	Kind    string `json:"kind"`
	Version int64  `json:"version"`
	File    string `json:"file,omitempty"`
	Message string `json:"message"`
	// For a migration in progress or interrupted: its runner's server
	// process, since when, and statements completed out of total.
	Pid       int64     `json:"pid,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Completed int       `json:"completed,omitempty"`
	Total     int       `json:"total,omitempty"`
}

func problemsJSON(ps []migrate.Problem) []problemJSON {
	out := make([]problemJSON, 0, len(ps))
	for _, p := range ps {
		j := problemJSON{Kind: string(p.Kind), Version: p.Version, File: p.File, Message: describeProblem(p)}
		switch p.Kind {
		case migrate.InProgress, migrate.Interrupted, migrate.Uncertain:
			j.Pid, j.Since, j.Completed, j.Total = p.Pid, p.Since, p.Completed, p.Total
		}
		out = append(out, j)
	}
	return out
}

// statusJSON is status -o json.
type statusJSON struct {
	Current  int64               `json:"current"`
	Latest   int64               `json:"latest"` // newest file version
	Versions []versionStatusJSON `json:"versions"`
	Pending  int                 `json:"pending"`
	// OtherVersionTable: see migrate.Status.
	OtherVersionTable string        `json:"other_version_table,omitempty"`
	Problems          []problemJSON `json:"problems"`
}

type versionStatusJSON struct {
	Version   int64         `json:"version"`
	Source    string        `json:"source,omitempty"`
	State     migrate.State `json:"state"`
	AppliedAt time.Time     `json:"applied_at,omitzero"`
}

func newStatusJSON(st *migrate.Status) statusJSON {
	out := statusJSON{Current: st.Current, Latest: st.Latest, Pending: st.Pending, OtherVersionTable: st.OtherVersionTable, Problems: problemsJSON(st.Problems)}
	if st.Versions != nil {
		out.Versions = make([]versionStatusJSON, 0, len(st.Versions))
	}
	for _, v := range st.Versions {
		out.Versions = append(out.Versions, versionStatusJSON(v))
	}
	return out
}
