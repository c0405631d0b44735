// Package exitcode holds shiplock's exit codes, the one list that the
// command line exits with, that the Job's podFailurePolicy is rendered from
// (kube/manifest) and that the README's table is tested against.
//
// Each code is either permanent (running the same command again cannot
// help: the Job fails at once) or retryable (it can heal by itself: the Job
// runs another pod, up to its backoffLimit). Codes 1-5 are permanent and
// keep the meaning they have had since the first release.
package exitcode

import (
	"fmt"
	"strings"
)

// Code is a process exit code of shiplock.
type Code int

// The exit codes. Their meanings are in Info.
const (
	OK          Code = 0
	Failed      Code = 1
	Usage       Code = 2
	BadFile     Code = 3
	Integrity   Code = 4
	Auth        Code = 5
	Unavailable Code = 6
	Locked      Code = 7
	Pending     Code = 8
	Stopped     Code = 9
)

// Kind says what a code means for whoever runs shiplock again.
type Kind int

const (
	// Success is exit 0.
	Success Kind = iota
	// Permanent failures repeat when the same command runs again against
	// the same files and database: a Job fails at once.
	Permanent
	// Retryable failures can heal by themselves (the server comes back,
	// the lock is released, the pod is rescheduled): a Job retries them.
	Retryable
	// Answer is a command's answer rather than a failure (status
	// --exit-code, check): no Job runs those commands.
	Answer
)

func (k Kind) String() string {
	switch k {
	case Success:
		return "success"
	case Permanent:
		return "permanent"
	case Retryable:
		return "retryable"
	case Answer:
		return "answer"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Info describes one code.
type Info struct {
	Code Code
	// Name is a short identifier ("unavailable"), stable for scripts.
	Name string
	// Short is a few words for --help ("database not available").
	Short string
	// Meaning is one line for the README's table and --help.
	Meaning string
	Kind    Kind
}

// table is the list, in code order. Unknown errors exit Failed: see the
// command line's classification (internal/cli/exit.go) for why.
var table = []Info{
	{OK, "ok", "success", "success", Success},
	{Failed, "failed", "migration failed", "a migration's SQL failed, or an error shiplock cannot classify", Permanent},
	{Usage, "usage", "usage", "bad flags, arguments or configuration", Permanent},
	{BadFile, "bad-file", "bad migration file", "a migration file is malformed, misnamed, duplicated, unreadable, or an unregistered Go migration; the migrations directory is missing or empty (`--allow-empty`); `lint` found a hazard at `--fail-on`, or `up --check-safety=error` found an error in a pending file", Permanent},
	{Integrity, "integrity", "integrity check failed", "integrity check failed: an applied file was edited, files out of order, an interrupted `NO TRANSACTION` migration in the other direction or whose running statement only the operator can settle", Permanent},
	{Auth, "auth", "bad credentials or missing database", "bad credentials, or the database does not exist", Permanent},
	{Unavailable, "unavailable", "database not available (not ready in time, or lost)", "the database is not available: not ready in time, or lost during the run (server shut down, restarted or crashed; connection reset or closed)", Retryable},
	{Locked, "locked", "lock not acquired in time", "a lock was not acquired in time: the migration lock (`--lock-timeout`), or a table lock (lock timeout or deadlock) after `--ddl-retries`", Retryable},
	{Pending, "pending", "pending or schema behind (status --exit-code, check)", "`status --exit-code`: migrations are pending; `check`: the schema is behind", Answer},
	{Stopped, "stopped", "stopped before finishing (SIGTERM, killed)", "stopped before finishing: told to stop (SIGTERM, Ctrl-C), the lease lock was lost (`--lock lease`: another runner took over), or (`kube run`) the container was killed (137: SIGKILL or out of memory, 143: SIGTERM)", Retryable},
}

// All returns every code, in order.
func All() []Info { return append([]Info(nil), table...) }

// Info returns c's description; a code shiplock does not use has Name ""
// and Kind Permanent.
func (c Code) Info() Info {
	for _, i := range table {
		if i.Code == c {
			return i
		}
	}
	return Info{Code: c, Kind: Permanent}
}

// Retryable reports whether c is a failure that can heal by itself.
func (c Code) Retryable() bool { return c.Info().Kind == Retryable }

func (c Code) String() string {
	if n := c.Info().Name; n != "" {
		return fmt.Sprintf("%d (%s)", int(c), n)
	}
	return fmt.Sprint(int(c))
}

// Of returns the codes of kind k, in order.
func Of(k Kind) []Code {
	var out []Code
	for _, i := range table {
		if i.Kind == k {
			out = append(out, i.Code)
		}
	}
	return out
}

// Summary is the codes in one paragraph, for --help.
func Summary() string {
	parts := make([]string, len(table))
	for n, i := range table {
		parts[n] = fmt.Sprintf("%d %s", int(i.Code), i.Short)
	}
	return fmt.Sprintf("Exit codes: %s. %s are permanent (a Job fails at once), %s worth retrying.",
		strings.Join(parts, ", "), join(Of(Permanent)), join(Of(Retryable)))
}

func join(cs []Code) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprint(int(c))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
