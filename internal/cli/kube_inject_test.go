//go:build !nokube

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
)

// TestKubeInjectReplaceGooseTable: --replace of a goose container that
// uses its own version table is a usage error naming the --table to pass;
// with that --table the rendered container gets SHIPLOCK_TABLE.
func TestKubeInjectReplaceGooseTable(t *testing.T) {
	job := `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: example.com/m:v1
        command: ["sh", "-c", "goose -table svc_versions -dir /migrations postgres \"$DSN\" up"]
`
	f := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(f, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--env", "none", "kube", "inject", "-f", f, "--replace", "migrate", "--image", "example.com/m", "--tag", "v1", "--db-host", "db", "--db-name", "app", "--secret", "s"}
	code, _, errOut := runCLI(t, nil, args...)
	if code != int(exitcode.Usage) || !strings.Contains(errOut, "uses goose table svc_versions") || !strings.Contains(errOut, "pass --table svc_versions") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, nil, append([]string{"--table", "svc_versions"}, args...)...)
	if code != 0 || !strings.Contains(out, "SHIPLOCK_TABLE") || !strings.Contains(out, "svc_versions") {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
}
