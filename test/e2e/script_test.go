package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/shiplock/shiplock/internal/testdb"
)

// TestScripts runs testdata/script/*.txtar against the built binary. Each
// script gets a fresh PostgreSQL database in PGHOST/PGPORT/PGUSER/PGDBNAME
// and PG_URL, and the binary as "shiplock".
//
// Beside testscript's own commands: "exits N CMD ARGS..." runs CMD and
// asserts its exit code is N (stdout and stderr are then checked as usual).
func TestScripts(t *testing.T) {
	srv := testdb.PostgresServer(t)
	binDir := filepath.Dir(shiplockBin)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			db := srv.CreateDatabase(t, "")
			env.Setenv("PATH", binDir+":"+env.Getenv("PATH"))
			env.Setenv("PGHOST", srv.Host)
			env.Setenv("PGPORT", strconv.Itoa(srv.Port))
			env.Setenv("PGUSER", "postgres")
			env.Setenv("PGDBNAME", db)
			env.Setenv("PG_URL", srv.URL(db, "", ""))
			// Mesh proxies on closed loopback ports, never the fixed 4191 and
			// 15020, where something may listen on a test machine.
			env.Setenv("SHIPLOCK_LINKERD_ADMIN_PORT", closedPort(t))
			env.Setenv("SHIPLOCK_ISTIO_STATUS_PORT", closedPort(t))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: bad code %q", args[0])
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					got = exit.ExitCode()
				} else if err != nil {
					ts.Fatalf("exits: %v", err)
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
		},
	})
}
