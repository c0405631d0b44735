package exitcode_test

import (
	"slices"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
)

func TestTable(t *testing.T) {
	all := exitcode.All()
	names := map[string]bool{}
	for n, i := range all {
		if int(i.Code) != n {
			t.Errorf("entry %d is code %d: want the codes in order, none skipped", n, i.Code)
		}
		if i.Name == "" || i.Short == "" || i.Meaning == "" || names[i.Name] {
			t.Errorf("code %d: name %q (empty or duplicate), short %q, meaning %q", i.Code, i.Name, i.Short, i.Meaning)
		}
		names[i.Name] = true
		if got := i.Code.Info(); got != i {
			t.Errorf("Code(%d).Info() = %+v, want %+v", i.Code, got, i)
		}
	}
	// 1-5 keep their meaning: permanent, as podFailurePolicies rendered by
	// every earlier release say.
	if got := exitcode.Of(exitcode.Permanent); !slices.Equal(got, []exitcode.Code{1, 2, 3, 4, 5}) {
		t.Errorf("permanent codes = %v, want 1-5", got)
	}
	for _, c := range []exitcode.Code{exitcode.Unavailable, exitcode.Locked, exitcode.Stopped} {
		if !c.Retryable() {
			t.Errorf("%v is not retryable", c)
		}
	}
	if exitcode.Pending.Retryable() || exitcode.Failed.Retryable() || exitcode.Code(137).Retryable() {
		t.Error("pending, failed or an unknown code is retryable")
	}
	if got := exitcode.Code(42).String(); got != "42" {
		t.Errorf("String of an unused code = %q", got)
	}
}

func TestSummary(t *testing.T) {
	want := "Exit codes: 0 success, 1 migration failed, 2 usage, 3 bad migration file, 4 integrity check failed, " +
		"5 bad credentials or missing database, 6 database not available (not ready in time, or lost), " +
		"7 lock not acquired in time, 8 pending or schema behind (status --exit-code, check), " +
		"9 stopped before finishing (SIGTERM, killed). " +
		"1, 2, 3, 4 and 5 are permanent (a Job fails at once), 6, 7 and 9 worth retrying."
	if got := exitcode.Summary(); got != want {
		t.Errorf("Summary() =\n%s\nwant\n%s", got, want)
	}
}
