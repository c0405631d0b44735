package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the generated manifests under deploy/")

// The commands that generate deploy/{init,job,gate}/ from deploy/base/: the
// same ones deploy/README.md shows.
var (
	common = []string{
		"--image", "registry.example.com/accounts-migrate",
		"--db-host", "postgres.accounts.svc.cluster.local", "--db-name", "accounts",
		"--secret", "account-secret",
	}
	generated = map[string][]string{
		// initContainer: every pod runs "shiplock up" first; the migration
		// image's tag follows the app's (v1).
		"init/deployment.yaml": append([]string{"kube", "inject", "-f", "deploy/base/deployment.yaml"}, common...),
		// Job: one run per release, out of band; the Deployment is the base.
		"job/job.yaml": append(append([]string{"kube", "job", "-n", "accounts", "--tag", "v1", "--mesh", "linkerd"}, common...), "--", "up"),
		// Job + gate: the same Job, and pods that only await the schema
		// with read-only credentials.
		"gate/job.yaml": append(append([]string{"kube", "job", "-n", "accounts", "--tag", "v1", "--mesh", "linkerd"}, common...), "--", "up"),
		"gate/deployment.yaml": append([]string{"kube", "inject", "-f", "deploy/base/deployment.yaml", "--pattern", "gate",
			"--gate-secret", "account-readonly-secret"}, common...),
	}
)

// TestDeployManifests regenerates the committed manifests and compares the
// bytes; go test -run TestDeployManifests -update rewrites them.
func TestDeployManifests(t *testing.T) {
	for file, args := range generated {
		t.Run(file, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cli.Main(context.Background(), args, cli.Streams{Out: &out, Err: &errOut, LookupEnv: func(string) (string, bool) { return "", false }})
			if code != 0 {
				t.Fatalf("shiplock %v: exit %d\n%s", args, code, errOut.String())
			}
			path := filepath.Join("deploy", file)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestDeployManifests -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s is not what shiplock generates now; regenerate with go test -run TestDeployManifests -update\n--- generated:\n%s", path, out.String())
			}
		})
	}
}
