package kubetest

import "testing"

func TestNamespacePrefix(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"TestJobSucceeds", "test-job-succeeds-"},
		{"TestJobTTLAfterFinished", "test-job-ttl-after-finished-"},
		{"TestRun/PodFailurePolicy_exit_42", "test-run-pod-failure-policy-exit-42-"},
		{"TestAVeryLongNameThatGoesOnAndOnAndOnBeyondTheLimit", "test-a-very-long-name-that-goes-on-and-o-"},
		{"Ü", "test-"},
	} {
		if got := namespacePrefix(tc.name); got != tc.want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
