package shiplock_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryDependencies keeps the library packages free of the CLI and of
// Kubernetes client code: only internal/cli and kube/jobrun may reach
// cobra or client-go.
func TestLibraryDependencies(t *testing.T) {
	libraries := []string{
		"./migrate/...", "./goosemigrations", "./dialect/...", "./dbwait", "./exitcode", "./lint/...", "./locktrace", "./gate/...", "./mesh/...", "./kube/manifest/...",
	}
	forbidden := []string{
		"github.com/spf13/cobra",
		"github.com/spf13/pflag",
		"k8s.io/client-go",
		"k8s.io/cli-runtime",
		"github.com/shiplock/shiplock/internal/cli",
		"github.com/shiplock/shiplock/kube/jobrun",
	}
	for _, lib := range libraries {
		// A library moved or renamed must move here too: a guard that skips
		// what it cannot find guards nothing.
		if _, err := os.Stat(strings.TrimSuffix(lib, "/...")); err != nil {
			t.Fatalf("library %s: %v (update the list in this test)", lib, err)
		}
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", lib).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", lib, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", lib, dep)
				}
			}
		}
	}
}

// TestPodBinaryDependencies: the image and release builders' libraries
// (and the man page generator) never reach the binary that ships.
func TestPodBinaryDependencies(t *testing.T) {
	for _, tags := range []string{"", "nokube,nosqlite"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "-f", "{{.ImportPath}}", "./cmd/shiplock").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			// goose comes only with a team's own binary (goosemigrations).
			if strings.HasPrefix(dep, "github.com/google/go-containerregistry/") || dep == "github.com/shiplock/shiplock/internal/imagebuild" || strings.HasPrefix(dep, "github.com/pressly/goose/") ||
				dep == "github.com/shiplock/shiplock/internal/release" || dep == "github.com/spf13/cobra/doc" {
				t.Errorf("cmd/shiplock (tags %q) depends on %s", tags, dep)
			}
		}
	}
}
