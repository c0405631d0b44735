//go:build !nokube

package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/kube/jobrun"
)

// TestKubeRunReport: kube run exits with the migration's own code, and a
// container killed by a signal (137, 143) exits 9, saying why.
func TestKubeRunReport(t *testing.T) {
	tests := []struct {
		res  jobrun.Result
		want exitcode.Code
		says string
	}{
		{jobrun.Result{Job: "j", Succeeded: true, Deleted: true, Message: "applied 1 migration"}, exitcode.OK, "succeeded (deleted): applied 1 migration"},
		{jobrun.Result{Job: "j", ExitCode: 3, Reason: "PodFailurePolicy"}, exitcode.BadFile, "exit code 3 (PodFailurePolicy)"},
		{jobrun.Result{Job: "j", ExitCode: 137, ContainerReason: "OOMKilled", Reason: "BackoffLimitExceeded", Attempts: 3}, exitcode.Stopped, "out of memory (OOMKilled, exit code 137); raise its memory limit: exit 9"},
		{jobrun.Result{Job: "j", ExitCode: 143, ContainerReason: "Error", Reason: "BackoffLimitExceeded"}, exitcode.Stopped, "terminated (exit code 143, SIGTERM)"},
	}
	for _, tt := range tests {
		var errOut bytes.Buffer
		g := &globals{streams: Streams{Err: &errOut}}
		err := report(g, "ns", &tt.res)
		var exit *exitError
		code := exitcode.OK
		if errors.As(err, &exit) {
			code = exit.code
		} else if err != nil {
			t.Fatalf("report: %v", err)
		}
		if code != tt.want || !strings.Contains(errOut.String(), tt.says) {
			t.Errorf("report(%+v) = exit %v, says:\n%s\nwant exit %v, saying %q", tt.res, code, errOut.String(), tt.want, tt.says)
		}
	}
}
