package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/test/kube/kubetest"
)

// TestKubectlPluginKubeRun: kubectl itself finds shiplock as a plugin by its
// name on PATH (kubectl-shiplock), and "kubectl shiplock kube run -- up"
// runs the migration Job on the test control plane.
func TestKubectlPluginKubeRun(t *testing.T) {
	t.Parallel()
	env := kubetest.New(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		// test/all.sh installs it with the Kubernetes tier.
		t.Fatalf("kubectl is not installed: %v", err)
	}
	bin := t.TempDir()
	if err := os.Symlink(shiplockBin, filepath.Join(bin, "kubectl-shiplock")); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if out, errOut, err := run("plugin", "list"); err != nil || !strings.Contains(out, "kubectl-shiplock") {
		t.Fatalf("kubectl plugin list: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := run("shiplock", "kube", "run", "--help"); err != nil || !strings.Contains(out, "kubectl shiplock kube run") {
		t.Fatalf("kubectl shiplock kube run --help: %v\n%s%s", err, out, errOut)
	}

	db := newKubeDB(t, env)
	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
	})
	args := append(append([]string{"shiplock", "kube", "run", "--log-format", "text"}, db.flags(t, dir)...), "--", "up")
	out, errOut, err := run(args...)
	if err != nil || !strings.Contains(errOut, "succeeded (deleted): applied 1 migration, now at version 1 (was 0)") {
		t.Fatalf("kubectl shiplock kube run -- up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if v := db.version(t); v != 1 {
		t.Fatalf("version %d after kubectl shiplock kube run, want 1", v)
	}
}
