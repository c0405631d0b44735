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

// start launches the server without waiting for it. Its log lines start
// with the Unix time in milliseconds (log_line_prefix %n), for serverReady.
func (c *cluster) start() error {
	return c.cmd("pg_ctl", "-D", c.dir, "-l", c.logPath(), "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c log_line_prefix='%%n '", c.port, c.dir), "start").Run()
}

func (c *cluster) logPath() string { return filepath.Join(c.dir, "log") }

// logSize is where the next start's lines begin in the server log.
func (c *cluster) logSize() int64 {
	fi, err := os.Stat(c.logPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

const readyLine = "database system is ready to accept connections"

// serverReady returns when the postmaster logged that it accepts
// connections, from the log lines written after offset (one start's). It
// is the reference of the measurement because it cannot come late: the
// postmaster sets its state to "running" and logs this line in one step
// before it goes back to accepting connections, and every connection
// accepted before then is refused ("the database system is starting up"),
// so a client's first successful query, and so its migration, ends after
// the line's time (truncated to the millisecond, so earlier still). A
// contender can therefore never show a negative time, whatever this
// program's own polling does. Call it once ready has succeeded.
func (c *cluster) serverReady(offset int64) (time.Time, error) {
	data, err := os.ReadFile(c.logPath())
	if err != nil {
		return time.Time{}, err
	}
	if offset > int64(len(data)) {
		offset = 0
	}
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		if !strings.Contains(line, readyLine) {
			continue
		}
		stamp, _, _ := strings.Cut(line, " ")
		sec, frac, _ := strings.Cut(stamp, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		msec, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil || len(frac) != 3 {
			return time.Time{}, fmt.Errorf("server log line %q: no %%n time prefix", line)
		}
		return time.Unix(s, msec*int64(time.Millisecond)), nil
	}
	return time.Time{}, fmt.Errorf("no %q line in the server log after offset %d", readyLine, offset)
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
	latency time.Duration // from the server's "ready" log line to migrated
	pollLag time.Duration // from that line to this program's first successful poll
	ok      bool
}

func run() error {
	delays := flag.String("delays", "500ms,1s,2s,3s,5s", "how long after the migration starts the server starts")
	reps := flag.Int("reps", 3, "trials per delay and contender")
	bin := flag.String("shiplock", "", "shiplock binary (default: built from this checkout)")
	keep := flag.String("keep", "", "also write the result table to DIR/wait-<date>.md, for the repository to keep (bench/results: the README quotes it)")
	flag.Parse()
	started := time.Now().UTC()

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
				offset := c.logSize()
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
				serverAt, err := c.serverReady(offset)
				if err != nil {
					return err
				}
				s := sample{delay: delay, latency: e.at.Sub(serverAt), pollLag: readyAt.Sub(serverAt), ok: e.err == nil}
				if s.ok && s.latency < 0 {
					return fmt.Errorf("%s finished %v before the server logged it was ready: the reference is wrong", name, -s.latency)
				}
				results[name] = append(results[name], s)
				fmt.Fprintf(os.Stderr, "%-22s delay %-6s ready->done %8.1f ms (this program's poll saw it %.1f ms after the log line) ok=%v\n", name, delay, ms(s.latency), ms(s.pollLag), s.ok)
				if err := c.stop(); err != nil {
					return err
				}
			}
		}
	}

	var out strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&out, format, args...) }
	p("### Readiness: from \"PostgreSQL accepts connections\" to \"migration finished\" (%s)\n\n", started.Format("2006-01-02 15:04 UTC"))
	p("Migration started while the server was down; the server started after the delays %s. %d trials per delay. Readiness is the time of the server's own log line %q (log_line_prefix %%n, milliseconds): the postmaster logs it before it accepts the first connection, so no contender can finish before it. Load average before: %s.\n\n", *delays, *reps, readyLine, loadAvg())
	p("| contender | median ms | min ms | max ms | failed runs | this program's 1 ms poll saw the server ready, median ms after the log line |\n|---|---:|---:|---:|---:|---:|\n")
	for _, name := range names {
		var lat, lag []float64
		failed := 0
		for _, s := range results[name] {
			lag = append(lag, ms(s.pollLag))
			if !s.ok {
				failed++
				continue
			}
			lat = append(lat, ms(s.latency))
		}
		sort.Float64s(lat)
		sort.Float64s(lag)
		if len(lat) == 0 {
			p("| %s | - | - | - | %d of %d | %.1f |\n", name, failed, len(results[name]), lag[len(lag)/2])
			continue
		}
		p("| %s | %.1f | %.1f | %.1f | %d of %d | %.1f |\n", name, lat[len(lat)/2], lat[0], lat[len(lat)-1], failed, len(results[name]), lag[len(lag)/2])
	}
	fmt.Print("\n" + out.String())
	if *keep != "" {
		if err := os.MkdirAll(*keep, 0o755); err != nil {
			return err
		}
		path := filepath.Join(*keep, "wait-"+started.Format("2006-01-02-1504")+".md")
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
