// Command mysql measures shiplock against goose, golang-migrate and the
// mariadb client on a MariaDB (or MySQL) server, in one run and side by
// side: a fresh apply of a generated set of migrations on an empty
// database, then a no-op run (everything applied) on the database each tool
// just migrated. A program, not a test: nothing asserts on time.
//
//	go run ./bench/mysql                           # 1000 migrations, 3 reps
//	go run ./bench/mysql --sizes 100,1000 --reps 5 --keep bench/results
//
// Every migration holds DDL, which MySQL commits implicitly, so shiplock
// runs each file statement by statement with a progress record per
// statement (its honest mode on MySQL); goose wraps each file in a
// transaction that the DDL commits anyway; golang-migrate sends each file
// as one multi-statement query; the floor is the mariadb client reading the
// concatenated files (no version table, no client logic).
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	gooseVersion   = "v3.30.0"
	migrateVersion = "v4.20.1"
	gooseTags      = "no_clickhouse no_libsql no_mssql no_azuresql no_postgres no_sqlite3 no_vertica no_ydb"
	migrateTags    = "mysql"
)

type config struct {
	admin string // mysql://user:pass@host:port/
	sizes []int
	reps  int
	noops int
	cache string
	keep  string
}

func main() {
	cfg := config{}
	var sizes string
	flag.StringVar(&cfg.admin, "database-url", "mysql://root@127.0.0.1:3306/", "admin URL of the server (the bench creates and drops databases shiplock_bench_*)")
	flag.StringVar(&sizes, "sizes", "1000", "migration set sizes, comma-separated")
	flag.IntVar(&cfg.reps, "reps", 3, "fresh applies per tool and size")
	flag.IntVar(&cfg.noops, "noop-reps", 3, "no-op runs after each fresh apply")
	flag.StringVar(&cfg.cache, "cache", filepath.Join(os.TempDir(), "shiplock-bench"), "work directory (peer binaries, builds, sets)")
	flag.StringVar(&cfg.keep, "keep", "", "also write the Markdown result to DIR/mysql-<time>.md")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "--sizes: %q is not a positive number\n", s)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/mysql:", err)
		os.Exit(1)
	}
}

// server is the admin connection and the parts of its URL the tools need.
type server struct {
	db               *sql.DB
	user, pass, addr string
	version          string
	next             int
}

func openServer(raw string) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		return nil, fmt.Errorf("--database-url: want mysql://user:password@host:port/")
	}
	s := &server{user: u.User.Username(), addr: u.Host}
	s.pass, _ = u.User.Password()
	if u.Port() == "" {
		s.addr += ":3306"
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s.user, s.pass, "tcp", s.addr
	if s.db, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
		return nil, err
	}
	if err := s.db.QueryRow("SELECT VERSION()").Scan(&s.version); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) create(ctx context.Context) (string, error) {
	s.next++
	name := fmt.Sprintf("shiplock_bench_%d_%d", os.Getpid(), s.next)
	_, err := s.db.ExecContext(ctx, "CREATE DATABASE "+name)
	return name, err
}

func (s *server) drop(ctx context.Context, name string) {
	_, _ = s.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
}

// The connection forms of each tool for database name.
func (s *server) shiplockURL(name string) string {
	return (&url.URL{Scheme: "mysql", User: url.UserPassword(s.user, s.pass), Host: s.addr, Path: "/" + name}).String()
}

func (s *server) gooseDSN(name string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName, cfg.ParseTime = s.user, s.pass, "tcp", s.addr, name, true
	return cfg.FormatDSN()
}

func (s *server) migrateURL(name string) string {
	return "mysql://" + s.gooseDSN(name) + "&multiStatements=true"
}

// counts are what a fresh apply must leave: every version recorded once,
// every seeded row inserted once.
func (s *server) counts(ctx context.Context, name, versionTable string) (versions, logged int, err error) {
	if versionTable != "" {
		if err = s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name+"."+versionTable).Scan(&versions); err != nil {
			return
		}
	}
	err = s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name+".bench_log").Scan(&logged)
	return
}

// upSQL is migration i: a table and an index; migration 1 also creates
// bench_log (no key, so a migration applied twice shows in the count), and
// every tenth inserts 100 rows into its table and one into bench_log.
func upSQL(i int) string {
	var b strings.Builder
	t := fmt.Sprintf("t_%05d", i)
	if i == 1 {
		b.WriteString("CREATE TABLE bench_log (version bigint NOT NULL, applied_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));\n")
	}
	fmt.Fprintf(&b, "CREATE TABLE %s (id bigint PRIMARY KEY, name varchar(100) NOT NULL, created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);\n", t)
	fmt.Fprintf(&b, "CREATE INDEX %s_name_idx ON %s (name);\n", t, t)
	if i%10 == 0 {
		fmt.Fprintf(&b, "INSERT INTO %s (id, name) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100) SELECT n, CONCAT('row ', n) FROM g;\n", t)
		fmt.Fprintf(&b, "INSERT INTO bench_log (version) VALUES (%d);\n", i)
	}
	return b.String()
}

func downSQL(i int) string {
	s := fmt.Sprintf("DROP TABLE t_%05d;\n", i)
	if i == 1 {
		s += "DROP TABLE bench_log;\n"
	}
	return s
}

type set struct {
	n                         int
	gooseDir, migrateDir, all string
}

func generate(root string, n int) (*set, error) {
	dir := filepath.Join(root, "mysql-sets", strconv.Itoa(n))
	s := &set{n: n, gooseDir: filepath.Join(dir, "goose"), migrateDir: filepath.Join(dir, "migrate"), all: filepath.Join(dir, "all.sql")}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{s.gooseDir, s.migrateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var all strings.Builder
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%05d_create_t_%05d", i, i)
		up, down := upSQL(i), downSQL(i)
		files := map[string]string{
			filepath.Join(s.gooseDir, name+".sql"):        "-- +goose Up\n" + up + "\n-- +goose Down\n" + down,
			filepath.Join(s.migrateDir, name+".up.sql"):   up,
			filepath.Join(s.migrateDir, name+".down.sql"): down,
		}
		for p, body := range files {
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
		all.WriteString(up)
	}
	return s, os.WriteFile(s.all, []byte(all.String()), 0o644)
}

// tool is one way of applying a set.
type tool struct {
	name         string
	versionTable string // "" for the floor
	cmd          func(s *set, db string) *exec.Cmd
	noop         bool
}

func run(ctx context.Context, cfg config) error {
	srv, err := openServer(cfg.admin)
	if err != nil {
		return err
	}
	defer srv.db.Close()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(cfg.cache, "build", "shiplock-mysql")
	// The binary the image ships (see Dockerfile), from the working tree.
	build := exec.Command("go", "build", "-trimpath", "-tags", "nokube,nosqlite", "-ldflags=-s -w", "-o", bin, "./cmd/shiplock")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build shiplock: %v\n%s", err, out)
	}
	goose, err := peer(cfg.cache, "goose-mysql", "github.com/pressly/goose/v3/cmd/goose", gooseVersion, gooseTags)
	if err != nil {
		return err
	}
	migrate, err := peer(cfg.cache, "migrate-mysql", "github.com/golang-migrate/migrate/v4/cmd/migrate", migrateVersion, migrateTags)
	if err != nil {
		return err
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		if client, err = exec.LookPath("mysql"); err != nil {
			return errors.New("no mariadb or mysql client on PATH (apt-get install mariadb-client)")
		}
	}
	host, port, _ := strings.Cut(srv.addr, ":")
	tools := []tool{
		{name: "shiplock", versionTable: "goose_db_version", noop: true, cmd: func(s *set, db string) *exec.Cmd {
			return exec.Command(bin, "up", "--dir", s.gooseDir, "--database-url", srv.shiplockURL(db), "--env", "none")
		}},
		{name: "goose " + gooseVersion, versionTable: "goose_db_version", noop: true, cmd: func(s *set, db string) *exec.Cmd {
			return exec.Command(goose, "-dir", s.gooseDir, "mysql", srv.gooseDSN(db), "up")
		}},
		{name: "golang-migrate " + migrateVersion, versionTable: "schema_migrations", noop: true, cmd: func(s *set, db string) *exec.Cmd {
			return exec.Command(migrate, "-path", s.migrateDir, "-database", srv.migrateURL(db), "up")
		}},
		{name: "mariadb client (floor)", cmd: func(s *set, db string) *exec.Cmd {
			c := exec.Command(client, "--protocol=tcp", "-h", host, "-P", port, "-u", srv.user, db)
			if srv.pass != "" {
				c.Env = append(os.Environ(), "MYSQL_PWD="+srv.pass)
			}
			f, _ := os.Open(s.all)
			c.Stdin = f
			return c
		}},
	}
	type key struct {
		tool, phase string
		n           int
	}
	samples := map[key][]float64{}
	var failures []string
	for _, n := range cfg.sizes {
		s, err := generate(cfg.cache, n)
		if err != nil {
			return err
		}
		for rep := 0; rep < cfg.reps; rep++ {
			for _, t := range tools {
				db, err := srv.create(ctx)
				if err != nil {
					return err
				}
				wall, out, err := timeIt(t.cmd(s, db))
				if err == nil && t.versionTable != "" {
					v, logged, cerr := srv.counts(ctx, db, t.versionTable)
					want := n + 1 // goose's version-0 row
					if t.versionTable == "schema_migrations" {
						want = 1 // golang-migrate keeps the latest version only
					}
					if cerr != nil || v != want || logged != n/10 {
						err = fmt.Errorf("after a fresh apply: %d version rows (want %d), %d bench_log rows (want %d) %v", v, want, logged, n/10, cerr)
					}
				}
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s fresh %d: %v\n%s", t.name, n, err, tail(out)))
				} else {
					samples[key{t.name, "fresh", n}] = append(samples[key{t.name, "fresh", n}], ms(wall))
				}
				fmt.Fprintf(os.Stderr, "%s fresh %d: %.0f ms\n", t.name, n, ms(wall))
				for i := 0; t.noop && err == nil && i < cfg.noops; i++ {
					wall, out, nerr := timeIt(t.cmd(s, db))
					if nerr != nil {
						failures = append(failures, fmt.Sprintf("%s no-op %d: %v\n%s", t.name, n, nerr, tail(out)))
						break
					}
					samples[key{t.name, "noop", n}] = append(samples[key{t.name, "noop", n}], ms(wall))
				}
				srv.drop(ctx, db)
			}
		}
	}

	var md strings.Builder
	fmt.Fprintf(&md, "# bench/mysql %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&md, "Server %s; %s/%s, %d CPUs, load %s; %d fresh applies per tool and size, %d no-op runs after each. Medians in ms (min-max); ratio = tool / goose.\n\n",
		srv.version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), loadAvg(), cfg.reps, cfg.noops)
	md.WriteString("| tool | phase | migrations | median ms | min-max | ratio to goose |\n|---|---|---|---|---|---|\n")
	gooseName := tools[1].name
	for _, n := range cfg.sizes {
		for _, phase := range []string{"fresh", "noop"} {
			base := median(samples[key{gooseName, phase, n}])
			for _, t := range tools {
				xs := samples[key{t.name, phase, n}]
				if len(xs) == 0 {
					continue
				}
				m := median(xs)
				fmt.Fprintf(&md, "| %s | %s | %d | %.0f | %.0f-%.0f | %.2f× |\n", t.name, phase, n, m, slices.Min(xs), slices.Max(xs), m/base)
			}
		}
	}
	if len(failures) > 0 {
		md.WriteString("\nFailures:\n\n")
		for _, f := range failures {
			fmt.Fprintf(&md, "- %s\n", strings.ReplaceAll(f, "\n", "\n  "))
		}
	} else {
		md.WriteString("\nEvery fresh apply left each version recorded once and each seeded row once; no run failed.\n")
	}
	fmt.Print(md.String())
	if cfg.keep != "" {
		p := filepath.Join(cfg.keep, "mysql-"+time.Now().UTC().Format("2006-01-02-1504")+".md")
		if err := os.WriteFile(p, []byte(md.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", p)
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d runs failed", len(failures))
	}
	return nil
}

func timeIt(c *exec.Cmd) (time.Duration, string, error) {
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	return time.Since(start), out.String(), err
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return strings.Join(lines, "\n")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", errors.New("run inside the shiplock module: go run ./bench/mysql")
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// peer returns the cached binary of a peer CLI, built with go install on
// first use.
func peer(cache, name, pkg, version, tags string) (string, error) {
	dir := filepath.Join(cache, "bin", name+"-"+version)
	path := filepath.Join(dir, strings.TrimSuffix(name, "-mysql"))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "building %s %s\n", name, version)
	c := exec.Command("go", "install", "-tags", tags, pkg+"@"+version)
	c.Dir = cache
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", pkg, version, err, out)
	}
	return path, nil
}
