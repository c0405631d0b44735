package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

func tryLock(t testing.TB, d mysql.Dialect, c *sql.Conn, want bool) {
	t.Helper()
	ok, err := d.TryLock(context.Background(), c)
	if err != nil || ok != want {
		t.Fatalf("TryLock = %v, %v; want %v", ok, err, want)
	}
}

// TestLockSemantics: RELEASE_LOCK's answers are checked, the holder is
// named from the processlist, and a marker is alive while its connection
// holds the lock (never for the reader's own).
func TestLockSemantics(t *testing.T) {
	ctx := context.Background()
	url := testdb.MySQL(t)
	db, db2 := open(t, url), open(t, url)
	c1, c2 := pin(t, db), pin(t, db2)
	var d mysql.Dialect
	if err := d.Unlock(ctx, c1); !errors.Is(err, mysql.ErrNotLocked) {
		t.Fatalf("Unlock of a lock nobody holds = %v, want ErrNotLocked", err)
	}
	tryLock(t, d, c1, true)
	if err := d.Unlock(ctx, c2); !errors.Is(err, mysql.ErrNotLocked) {
		t.Fatalf("Unlock by another session = %v, want ErrNotLocked", err)
	}
	tryLock(t, d, c2, false)
	id := queryString(t, c1, "SELECT CONNECTION_ID()")
	holder, err := d.LockHolder(ctx, c2)
	if err != nil || !strings.HasPrefix(holder, "connection "+id+" (user ") {
		t.Fatalf("LockHolder = %q, %v; want connection %s with its user", holder, err, id)
	}
	t.Logf("holder: %s", holder)

	if err := d.CreateVersionTable(ctx, c1); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureRecordTable(ctx, c1); err != nil {
		t.Fatal(err)
	}
	if err := d.PutRecord(ctx, c1, dialect.Record{Version: 1, Source: "1.sql", Checksum: "c", State: dialect.StateApplying, Statement: 1, Total: 3}); err != nil {
		t.Fatal(err)
	}
	alive := func(c *sql.Conn) bool {
		t.Helper()
		rs, err := d.ListRecords(ctx, c)
		if err != nil || len(rs) != 1 {
			t.Fatalf("ListRecords = %+v, %v", rs, err)
		}
		_, all, err := d.ListAll(ctx, c)
		if err != nil || len(all) != 1 || all[0] != rs[0] {
			t.Fatalf("ListAll records = %+v, %v; ListRecords %+v", all, err, rs)
		}
		if fmt.Sprint(rs[0].Pid) != id {
			t.Fatalf("marker pid %d, want the writer's connection %s", rs[0].Pid, id)
		}
		return rs[0].Alive
	}
	if !alive(c2) || alive(c1) {
		t.Fatal("marker of the lock holder: want alive for another reader, not for its own")
	}
	if err := d.Unlock(ctx, c1); err != nil {
		t.Fatal(err)
	}
	if alive(c2) {
		t.Fatal("marker alive after its writer released the lock")
	}
	if holder, err := d.LockHolder(ctx, c2); err != nil || holder != "" {
		t.Fatalf("LockHolder of a free lock = %q, %v", holder, err)
	}
	tryLock(t, d, c2, true)
	if alive(c1) {
		t.Fatal("marker alive while another connection holds the lock")
	}
	// A session that ends releases the lock (once the server has ended it:
	// the client's quit is not waited for).
	holderID := queryString(t, c2, "SELECT CONNECTION_ID()")
	c2.Close()
	db2.Close()
	for deadline := time.Now().Add(time.Minute); queryString(t, c1, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = "+holderID) != "0"; {
		if time.Now().After(deadline) {
			t.Fatal("the closed session never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tryLock(t, d, c1, true)
}

// TestLockPerDatabase: GET_LOCK is server-wide, shiplock's lock is per
// database (or per qualifying schema): runners of two databases do not
// exclude each other, a database name too long for GET_LOCK still gets a
// lock of its own, and a connection without a database cannot lock.
func TestLockPerDatabase(t *testing.T) {
	ctx := context.Background()
	urlA, urlB := testdb.MySQL(t), testdb.MySQL(t)
	a, b := pin(t, open(t, urlA)), pin(t, open(t, urlB))
	var d mysql.Dialect
	tryLock(t, d, a, true)
	tryLock(t, d, b, true)

	long := strings.Repeat("l", 54) + fmt.Sprint(time.Now().UnixNano()%1e9)
	if _, err := a.ExecContext(ctx, "CREATE DATABASE "+long); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.ExecContext(context.Background(), "DROP DATABASE "+long) })
	table, err := dialect.ParseTable(long + ".goose_db_version")
	if err != nil {
		t.Fatal(err)
	}
	dl := mysql.Dialect{Table: table}
	tryLock(t, dl, a, true)
	tryLock(t, dl, b, false)
	if mine := queryString(t, a, "SELECT IS_USED_LOCK(CONCAT('shiplock:', MD5('"+long+"'))) = CONNECTION_ID()"); mine != "1" {
		t.Fatalf("the lock of the %d-character database is not shiplock:MD5(name)", len(long))
	}

	cfg, err := mysql.ParseURL(urlA)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	none := mysql.Open(cfg)
	defer none.Close()
	if ok, err := d.TryLock(ctx, pin(t, none)); ok || !errors.Is(err, mysql.ErrNoDatabase) {
		t.Fatalf("TryLock without a database = %v, %v; want ErrNoDatabase", ok, err)
	}
}

// TestGooseTableLocker: a goose v3.30.0 runner using goose's MySQL table
// locker (lock.NewMySQLTableLocker, its defaults) holds the migration lock
// for shiplock: while its migration runs, TryLock refuses (and leaves
// GET_LOCK free) and LockHolder names it; once it is done, TryLock takes
// the lock.
func TestGooseTableLocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := open(t, testdb.MySQL(t))
	running, release := make(chan struct{}), make(chan struct{})
	m := goose.NewGoMigration(1, &goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error {
		close(running)
		<-release
		return nil
	}}, nil)
	locker, err := lock.NewMySQLTableLocker()
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectMySQL, db, nil, goose.WithGoMigrations(m), goose.WithLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Up(ctx); done <- err }()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("goose Up ended before its migration ran: %v", err)
	}

	var d mysql.Dialect
	c := pin(t, db)
	tryLock(t, d, c, false)
	holder, err := d.LockHolder(ctx, c)
	if err != nil || !strings.HasPrefix(holder, "goose table locker ") {
		t.Errorf("LockHolder = %q, %v; want goose's table locker", holder, err)
	}
	t.Logf("holder: %s", holder)
	if free := queryString(t, c, "SELECT IS_FREE_LOCK(CONCAT('shiplock:', DATABASE()))"); free != "1" {
		t.Errorf("GET_LOCK still held after the refusal")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("goose Up: %v", err)
	}
	tryLock(t, d, c, true)
	if err := d.Unlock(ctx, c); err != nil {
		t.Fatal(err)
	}
}
