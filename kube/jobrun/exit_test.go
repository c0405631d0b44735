package jobrun_test

import (
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/kube/jobrun"
)

// TestResultExit maps how a Job ended to shiplock's exit codes: a
// container killed by a signal is retryable, never a raw 137 or 143
// outside the documented table.
func TestResultExit(t *testing.T) {
	tests := []struct {
		name string
		res  jobrun.Result
		want exitcode.Code
		why  string // in the explanation; "" for none
	}{
		{"succeeded", jobrun.Result{Succeeded: true, ExitCode: 0}, exitcode.OK, ""},
		{"migration failed", jobrun.Result{ExitCode: 1, ContainerReason: "Error"}, exitcode.Failed, ""},
		{"bad file", jobrun.Result{ExitCode: 3, ContainerReason: "Error"}, exitcode.BadFile, ""},
		{"database lost", jobrun.Result{ExitCode: 6}, exitcode.Unavailable, ""},
		{"stopped by shiplock", jobrun.Result{ExitCode: 9}, exitcode.Stopped, ""},
		{"oom killed", jobrun.Result{ExitCode: 137, ContainerReason: "OOMKilled"}, exitcode.Stopped, "OOMKilled"},
		{"killed", jobrun.Result{ExitCode: 137, ContainerReason: "Error"}, exitcode.Stopped, "SIGKILL"},
		{"terminated", jobrun.Result{ExitCode: 143, ContainerReason: "Error"}, exitcode.Stopped, "SIGTERM"},
		{"another signal", jobrun.Result{ExitCode: 139}, exitcode.Failed, "139 is not one of shiplock's"},
		{"command not found", jobrun.Result{ExitCode: 127}, exitcode.Failed, "127 is not one of shiplock's"},
		{"deadline", jobrun.Result{ExitCode: -1, Reason: "DeadlineExceeded"}, exitcode.Failed, "never exited"},
		{"exit 0 yet failed", jobrun.Result{ExitCode: 0, Reason: "DeadlineExceeded"}, exitcode.Failed, "exited 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := tt.res.Exit()
			if got != tt.want || (tt.why == "") != (why == "") || !strings.Contains(why, tt.why) {
				t.Fatalf("Exit() = %v, %q; want %v, %q", got, why, tt.want, tt.why)
			}
			if got != exitcode.OK && got.Info().Name == "" {
				t.Fatalf("exit code %d is not in package exitcode", got)
			}
		})
	}
}
