// Command wait measures how soon a migration finishes after PostgreSQL
// starts accepting connections, when the migration was started while the
// server was down (what an initContainer does when the pod and its
// database start together): shiplock up, which waits by itself, against
// the usual recipe, a TCP check every 5 s followed by a single attempt
// (until nc -z HOST PORT; do sleep 5; done; migrate).
//
// It runs its own throw-away PostgreSQL cluster (initdb into a temporary
// directory, a free loopback port; as root, as the postgres user), so it
// can stop and start the server at will. It is a program, not a test.
//
//	go run ./bench/wait [--delays 500ms,1s,2s,3s,5s] [--reps 3]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wait bench:", err)
		os.Exit(1)
	}
}

type cluster struct {
	bin, dir string
	port     int
	asUser   *syscall.Credential
}

func (c *cluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.asUser}
	}
	return cmd
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// start launches the server without waiting for it.
func (c *cluster) start() error {
	return c.cmd("pg_ctl", "-D", c.dir, "-l", filepath.Join(c.dir, "log"), "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir), "start").Run()
}

func (c *cluster) stop() error {
	return c.cmd("pg_ctl", "-D", c.dir, "-m", "fast", "-w", "stop").Run()
}

// ready polls every millisecond until a real query answers, and returns
// when it did.
func (c *cluster) ready(ctx context.Context) (time.Time, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		conn, err := pgx.Connect(cctx, c.url("postgres"))
		if err == nil {
			_, err = conn.Exec(cctx, "SELECT 1")
			conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return time.Now(), nil
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

func newCluster() (*cluster, func(), error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, nil, errors.New("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	sort.Strings(bins)
	c := &cluster{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "shiplock-wait-bench-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { c.stop(); os.RemoveAll(dir) }
	c.dir = filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, cleanup, fmt.Errorf("as root, the cluster runs as user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.asUser = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, cleanup, err
		}
	}
	if out, err := c.cmd("initdb", "-D", c.dir, "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput(); err != nil {
		return nil, cleanup, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, cleanup, err
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	return c, cleanup, nil
}

type sample struct {
	delay   time.Duration
	latency time.Duration // from ready to migrated
	ok      bool
}

func run() error {
	delays := flag.String("delays", "500ms,1s,2s,3s,5s", "how long after the migration starts the server starts")
	reps := flag.Int("reps", 3, "trials per delay and contender")
	bin := flag.String("shiplock", "", "shiplock binary (default: built from this checkout)")
	flag.Parse()

	if *bin == "" {
		*bin = filepath.Join(os.TempDir(), "shiplock-wait-bench-bin")
		build := exec.Command("go", "build", "-tags", "nokube,nosqlite", "-o", *bin, "./cmd/shiplock")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build shiplock: %v\n%s", err, out)
		}
	}
	migrations, err := os.MkdirTemp("", "shiplock-wait-bench-m-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(migrations)
	if err := os.WriteFile(filepath.Join(migrations, "00001_t.sql"), []byte("-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n"), 0o644); err != nil {
		return err
	}
	c, cleanup, err := newCluster()
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return err
	}

	contenders := map[string]func(db string) *exec.Cmd{
		"shiplock up": func(db string) *exec.Cmd {
			return exec.Command(*bin, "up", "--dir", migrations, "--database-url", c.url(db), "--wait-timeout", "1m", "--log-format", "json")
		},
		"nc -z loop + sleep 5": func(db string) *exec.Cmd {
			script := fmt.Sprintf(`until (exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null; do sleep 5; done; exec "$0" up --dir %s --database-url %s --wait-timeout 0`, c.port, migrations, c.url(db))
			return exec.Command("bash", "-c", script, *bin)
		},
	}
	names := []string{"shiplock up", "nc -z loop + sleep 5"}
	results := map[string][]sample{}
	n := 0
	for _, ds := range strings.Split(*delays, ",") {
		delay, err := time.ParseDuration(strings.TrimSpace(ds))
		if err != nil {
			return fmt.Errorf("--delays: %v", err)
		}
		for rep := 0; rep < *reps; rep++ {
			for _, name := range names {
				n++
				db := fmt.Sprintf("wait_%d", n)
				// A fresh database, then the server down.
				if err := c.start(); err != nil {
					return fmt.Errorf("start: %w", err)
				}
				if _, err := c.ready(context.Background()); err != nil {
					return err
				}
				if out, err := c.cmd("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres", "-Xqc", "CREATE DATABASE "+db).CombinedOutput(); err != nil {
					return fmt.Errorf("create database: %v\n%s", err, out)
				}
				if err := c.stop(); err != nil {
					return fmt.Errorf("stop: %w", err)
				}

				cmd := contenders[name](db)
				if err := cmd.Start(); err != nil {
					return err
				}
				type exit struct {
					err error
					at  time.Time
				}
				done := make(chan exit, 1)
				go func() { err := cmd.Wait(); done <- exit{err, time.Now()} }()
				time.Sleep(delay)
				if err := c.start(); err != nil {
					return fmt.Errorf("start: %w", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				readyAt, err := c.ready(ctx)
				cancel()
				if err != nil {
					return fmt.Errorf("server not ready: %w", err)
				}
				e := <-done
				// Negative when the contender saw the server ready before
				// this poller did.
				s := sample{delay: delay, latency: e.at.Sub(readyAt), ok: e.err == nil}
				results[name] = append(results[name], s)
				fmt.Fprintf(os.Stderr, "%-22s delay %-6s ready->done %8.1f ms ok=%v\n", name, delay, ms(s.latency), s.ok)
				if err := c.stop(); err != nil {
					return err
				}
			}
		}
	}

	fmt.Printf("\n### Readiness: from \"PostgreSQL accepts connections\" to \"migration finished\"\n\n")
	fmt.Printf("Migration started while the server was down; the server started after the delay. %d trials per delay. Readiness is when this program's own poll (a connect and SELECT 1 every millisecond) first succeeds; a contender that got there first shows a negative time.\n\n", *reps)
	fmt.Printf("| contender | median ms | min ms | max ms | failed runs |\n|---|---:|---:|---:|---:|\n")
	for _, name := range names {
		var lat []float64
		failed := 0
		for _, s := range results[name] {
			if !s.ok {
				failed++
				continue
			}
			lat = append(lat, ms(s.latency))
		}
		sort.Float64s(lat)
		if len(lat) == 0 {
			fmt.Printf("| %s | - | - | - | %d of %d |\n", name, failed, len(results[name]))
			continue
		}
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %d of %d |\n", name, lat[len(lat)/2], lat[0], lat[len(lat)-1], failed, len(results[name]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
