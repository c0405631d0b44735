package sqlfile

// goose's parser is internal to its module, so the oracle drives goose's
// public Provider over a one-file fs.FS and a database/sql driver that only
// records what it is asked to execute: the statements goose would send, in
// order, and whether it opened a transaction.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

// gooseResult is what goose does with a file.
type gooseResult struct {
	up, down []string
	noTx     bool
	err      error // goose rejected the file
}

// gooseParse runs src through goose v3's provider, Up then Down, without a
// real database. Variables for ENVSUB come from the process environment, as
// goose reads them.
func gooseParse(tb testing.TB, src []byte) gooseResult {
	tb.Helper()
	rec := &recorder{}
	db := sql.OpenDB(rec)
	defer db.Close()
	fsys := fstest.MapFS{"00001_fuzz.sql": &fstest.MapFile{Data: src}}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithDisableVersioning(true),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		tb.Fatalf("goose.NewProvider: %v", err)
	}
	ctx := context.Background()
	var res gooseResult
	if _, err := p.ApplyVersion(ctx, 1, true); err != nil {
		// The recorder never fails, so any error is goose refusing the file.
		return gooseResult{err: err}
	}
	res.up, res.noTx = rec.take()
	if _, err := p.ApplyVersion(ctx, 1, false); err != nil {
		tb.Fatalf("goose: down failed after up succeeded: %v", err)
	}
	res.down, _ = rec.take()
	return res
}

// recorder is a driver.Connector whose connections record Exec calls and
// transactions and always succeed.
type recorder struct {
	execs []string
	began bool
}

var (
	_ driver.Connector     = (*recorder)(nil)
	_ driver.ExecerContext = (*recConn)(nil)
	_ driver.ConnBeginTx   = (*recConn)(nil)
)

// take returns the recorded statements and whether a transaction was begun,
// and clears them.
func (r *recorder) take() ([]string, bool) {
	execs, began := r.execs, r.began
	r.execs, r.began = nil, false
	return execs, !began
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &recConn{r}, nil }
func (r *recorder) Driver() driver.Driver                        { return recDriver{r} }

type recDriver struct{ r *recorder }

func (d recDriver) Open(string) (driver.Conn, error) { return &recConn{d.r}, nil }

type recConn struct{ r *recorder }

func (c *recConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("recorder: prepared statements not supported")
}
func (c *recConn) Close() error { return nil }
func (c *recConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.r.began = true
	return recTx{}, nil
}
func (c *recConn) ExecContext(_ context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("recorder: unexpected arguments %v", args)
	}
	c.r.execs = append(c.r.execs, query)
	return driver.RowsAffected(0), nil
}

type recTx struct{}

func (recTx) Commit() error   { return nil }
func (recTx) Rollback() error { return nil }

// oracleEnv is the environment both parsers see in differential tests.
var oracleEnv = map[string]string{
	"SQLFILE_SCHEMA": "app",
	"SQLFILE_OWNER":  "app_owner",
	"SQLFILE_EMPTY":  "",
	"SQLFILE_SEMI":   "x;",
	"SQLFILE_DASH":   "-- c",
	"SQLFILE_NL":     "one\ntwo",
}

func setOracleEnv(tb interface{ Setenv(k, v string) }) {
	for k, v := range oracleEnv {
		tb.Setenv(k, v)
	}
}

// compareWithGoose parses src with Parse and with goose and reports any
// difference in acceptance, statements or transaction mode.
func compareWithGoose(t *testing.T, src []byte) {
	t.Helper()
	got, err := Parse("fuzz.sql", bytes.NewReader(src), os.LookupEnv)
	if bytes.IndexByte(src, 0) >= 0 {
		// Rejected on purpose where goose accepts: no PostgreSQL query can
		// hold a NUL byte.
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("a file with a NUL byte was accepted (err %v)", err)
		}
		return
	}
	want := gooseParse(t, src)
	if (err != nil) != (want.err != nil) {
		t.Fatalf("acceptance differs for %q\nsqlfile: %v\ngoose:   %v", src, err, want.err)
	}
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error is %T, not *ParseError: %v", err, err)
		}
		return
	}
	if !equalSQL(got.Up, want.up) {
		t.Fatalf("up differs for %q\nsqlfile: %q\ngoose:   %q", src, sqlOf(got.Up), want.up)
	}
	if !equalSQL(got.Down, want.down) {
		t.Fatalf("down differs for %q\nsqlfile: %q\ngoose:   %q", src, sqlOf(got.Down), want.down)
	}
	if got.NoTransaction != want.noTx {
		t.Fatalf("NoTransaction differs for %q: sqlfile %v, goose %v", src, got.NoTransaction, want.noTx)
	}
}

func equalSQL(got []Statement, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].SQL != want[i] {
			return false
		}
	}
	return true
}

func sqlOf(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.SQL)
	}
	return out
}

// TestGooseOwnTestdata runs every .sql file shipped in the goose module
// (its parser's test inputs, examples and migrations) through both parsers.
func TestGooseOwnTestdata(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/pressly/goose/v3").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("locate the goose module: %v", err)
	}
	setOracleEnv(t)
	var n int
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".sql" {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		rel, _ := filepath.Rel(dir, path)
		t.Run(rel, func(t *testing.T) { compareWithGoose(t, src) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no .sql files under %s", dir)
	}
}
