package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/dialect/sqlite"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// target is one real database kind the engine tests run on.
type target struct {
	name string
	// open returns a new handle on a fresh database (fresh per call of
	// newDB; open may be called again for a second runner).
	newDB func(t testing.TB) func(t testing.TB) (*sql.DB, dialect.Dialect)
}

var targets = []target{
	{"sqlite", func(t testing.TB) func(testing.TB) (*sql.DB, dialect.Dialect) {
		path := filepath.Join(t.TempDir(), "test.db")
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, d, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, d
		}
	}},
	{"postgres", func(t testing.TB) func(testing.TB) (*sql.DB, dialect.Dialect) {
		url := testdb.Postgres(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, err := postgres.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, postgres.Dialect{}
		}
	}},
}

// forEach runs fn as a parallel subtest on every target.
func forEach(t *testing.T, fn func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect))) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tg.newDB(t))
		})
	}
}

func load(t testing.TB, files fstest.MapFS, goms ...migrate.GoMigration) []*migrate.Migration {
	t.Helper()
	migs, err := migrate.Load(files, ".", goms, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return migs
}

func newMigrator(t testing.TB, open func(testing.TB) (*sql.DB, dialect.Dialect), files fstest.MapFS, opts migrate.Options, goms ...migrate.GoMigration) (*migrate.Migrator, *sql.DB) {
	t.Helper()
	db, d := open(t)
	return migrate.New(db, d, load(t, files, goms...), opts), db
}

func sqlFile(up, down string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n-- +goose Down\n" + down + "\n")}
}

func threeTables() fstest.MapFS {
	return fstest.MapFS{
		"00001_a.sql": sqlFile("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": sqlFile("CREATE TABLE b (id int);", "DROP TABLE b;"),
		"00003_c.sql": sqlFile("CREATE TABLE c (id int);", "DROP TABLE c;"),
	}
}

func tableExists(t testing.TB, db *sql.DB, name string) bool {
	t.Helper()
	// Works on both: selecting from a missing table fails.
	_, err := db.Exec("SELECT count(*) FROM " + name)
	return err == nil
}

func wantVersion(t testing.TB, m *migrate.Migrator, want int64) {
	t.Helper()
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Current != want {
		t.Fatalf("current version = %d, want %d", st.Current, want)
	}
}

func TestUpDownRedo(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		m, db := newMigrator(t, open, threeTables(), migrate.Options{})

		res, err := m.Up(ctx, migrate.UpOptions{ByOne: true})
		if err != nil || len(res.Applied) != 1 || res.To != 1 {
			t.Fatalf("Up by one = %+v, %v", res, err)
		}
		res, err = m.Up(ctx, migrate.UpOptions{To: 2})
		if err != nil || len(res.Applied) != 1 || res.From != 1 || res.To != 2 {
			t.Fatalf("Up to 2 = %+v, %v", res, err)
		}
		res, err = m.Up(ctx, migrate.UpOptions{})
		if err != nil || len(res.Applied) != 1 || res.To != 3 {
			t.Fatalf("Up = %+v, %v", res, err)
		}
		res, err = m.Up(ctx, migrate.UpOptions{})
		if err != nil || len(res.Applied) != 0 || res.To != 3 || res.LockWait != 0 {
			t.Fatalf("no-op Up = %+v, %v; want nothing applied and no lock", res, err)
		}
		for _, tbl := range []string{"a", "b", "c"} {
			if !tableExists(t, db, tbl) {
				t.Errorf("table %s missing after up", tbl)
			}
		}

		res, err = m.Redo(ctx)
		if err != nil || len(res.Applied) != 2 || res.To != 3 {
			t.Fatalf("Redo = %+v, %v", res, err)
		}
		res, err = m.Down(ctx, -1)
		if err != nil || len(res.Applied) != 1 || res.To != 2 || tableExists(t, db, "c") {
			t.Fatalf("Down = %+v, %v", res, err)
		}
		res, err = m.Down(ctx, 0)
		if err != nil || len(res.Applied) != 2 || res.To != 0 {
			t.Fatalf("Down to 0 = %+v, %v", res, err)
		}
		if tableExists(t, db, "a") || tableExists(t, db, "b") {
			t.Fatal("tables left after down to 0")
		}
		if _, err := m.Down(ctx, -1); err != nil {
			t.Fatalf("Down with nothing applied: %v", err)
		}
		if _, err := m.Redo(ctx); !errors.Is(err, migrate.ErrNoCurrentVersion) {
			t.Fatalf("Redo with nothing applied = %v, want ErrNoCurrentVersion", err)
		}
	})
}

func TestFailureFileModeKeepsLastGoodVersion(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		files := threeTables()
		files["00002_b.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE b (id int);\n\nSELECT * FROM no_such_table;\n-- +goose Down\nDROP TABLE b;\n")}
		m, db := newMigrator(t, open, files, migrate.Options{})
		res, err := m.Up(context.Background(), migrate.UpOptions{})
		var merr *migrate.MigrationError
		if !errors.As(err, &merr) {
			t.Fatalf("Up error = %v, want a MigrationError", err)
		}
		if merr.Version != 2 || merr.File != "00002_b.sql" || merr.Line != 4 {
			t.Errorf("MigrationError = version %d file %s line %d; want 2, 00002_b.sql, 4", merr.Version, merr.File, merr.Line)
		}
		if !strings.HasPrefix(err.Error(), "00002_b.sql:4: apply version 2: ") {
			t.Errorf("error text = %q", err)
		}
		var perr *migrate.PartialError
		if !errors.As(err, &perr) || len(perr.Applied) != 1 || perr.Applied[0].Version != 1 {
			t.Errorf("PartialError = %+v; want version 1 applied", perr)
		}
		if res.To != 1 {
			t.Errorf("result To = %d, want 1", res.To)
		}
		wantVersion(t, m, 1)
		if tableExists(t, db, "b") {
			t.Error("table b exists: the failed migration was not rolled back")
		}
	})
}

func TestFailureAllModeChangesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		files := threeTables()
		files["00003_c.sql"] = sqlFile("CREATE TABLE c (id int);\nINSERT INTO nope VALUES (1);", "DROP TABLE c;")
		m, db := newMigrator(t, open, files, migrate.Options{TxMode: migrate.TxAll})
		_, err := m.Up(context.Background(), migrate.UpOptions{})
		var merr *migrate.MigrationError
		if !errors.As(err, &merr) || merr.Version != 3 || merr.Line != 3 {
			t.Fatalf("Up = %v, want a MigrationError for version 3 at line 3", err)
		}
		wantVersion(t, m, 0)
		if tableExists(t, db, "a") {
			t.Error("table a exists after a failed all-mode run")
		}
		// Fixed, the whole set goes in at once.
		files["00003_c.sql"] = sqlFile("CREATE TABLE c (id int);", "DROP TABLE c;")
		m2, _ := newMigrator(t, open, files, migrate.Options{TxMode: migrate.TxAll})
		if res, err := m2.Up(context.Background(), migrate.UpOptions{}); err != nil || len(res.Applied) != 3 {
			t.Fatalf("Up = %+v, %v", res, err)
		}
	})
}

func TestAllModeRefusesNoTransaction(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		files := threeTables()
		files["00002_b.sql"] = &fstest.MapFile{Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE b (id int);\n")}
		m, db := newMigrator(t, open, files, migrate.Options{TxMode: migrate.TxAll})
		_, err := m.Up(context.Background(), migrate.UpOptions{})
		var ferr *migrate.FileError
		if !errors.As(err, &ferr) || ferr.File != "00002_b.sql" {
			t.Fatalf("Up = %v, want a FileError naming 00002_b.sql", err)
		}
		if tableExists(t, db, "a") {
			t.Error("all mode applied something before refusing")
		}
	})
}

func TestNoTransactionAndNoneMode(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		files := threeTables()
		files["00002_b.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\n-- +goose NO TRANSACTION\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n")}
		m, _ := newMigrator(t, open, files, migrate.Options{TxMode: migrate.TxNone})
		if res, err := m.Up(context.Background(), migrate.UpOptions{}); err != nil || len(res.Applied) != 3 {
			t.Fatalf("Up = %+v, %v", res, err)
		}
		if res, err := m.Down(context.Background(), 0); err != nil || len(res.Applied) != 3 {
			t.Fatalf("Down = %+v, %v", res, err)
		}
	})
}

func TestEditedFileBlocksUp(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		files := threeTables()
		m, _ := newMigrator(t, open, files, migrate.Options{})
		if _, err := m.Up(ctx, migrate.UpOptions{To: 2}); err != nil {
			t.Fatal(err)
		}
		files["00001_a.sql"] = sqlFile("CREATE TABLE a (id bigint);", "DROP TABLE a;")
		m2, _ := newMigrator(t, open, files, migrate.Options{})
		_, err := m2.Up(ctx, migrate.UpOptions{})
		var ierr *migrate.IntegrityError
		if !errors.As(err, &ierr) || len(ierr.Problems) != 1 || ierr.Problems[0].Kind != migrate.Edited || ierr.Problems[0].Version != 1 {
			t.Fatalf("Up after edit = %v, want an IntegrityError for version 1", err)
		}
		wantVersion(t, m2, 2)
		problems, err := m2.Verify(ctx)
		if err != nil || len(problems) != 1 || problems[0].Kind != migrate.Edited {
			t.Fatalf("Verify = %+v, %v", problems, err)
		}
		m3, _ := newMigrator(t, open, files, migrate.Options{IgnoreChecksums: true})
		if res, err := m3.Up(ctx, migrate.UpOptions{}); err != nil || len(res.Applied) != 1 {
			t.Fatalf("Up ignoring checksums = %+v, %v", res, err)
		}
	})
}

func TestOutOfOrderAndAhead(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		files := threeTables()
		gap := fstest.MapFS{"00001_a.sql": files["00001_a.sql"], "00003_c.sql": files["00003_c.sql"]}
		m, _ := newMigrator(t, open, gap, migrate.Options{})
		if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		// 00002 arrives late.
		m2, _ := newMigrator(t, open, files, migrate.Options{})
		_, err := m2.Up(ctx, migrate.UpOptions{})
		var ierr *migrate.IntegrityError
		if !errors.As(err, &ierr) || ierr.Problems[0].Kind != migrate.OutOfOrder || ierr.Problems[0].Version != 2 {
			t.Fatalf("Up = %v, want out-of-order version 2", err)
		}
		m3, _ := newMigrator(t, open, files, migrate.Options{AllowOutOfOrder: true})
		if res, err := m3.Up(ctx, migrate.UpOptions{}); err != nil || len(res.Applied) != 1 || res.Applied[0].Version != 2 {
			t.Fatalf("Up allowing out of order = %+v, %v", res, err)
		}

		// An older image: only 00001 and 00002 bundled.
		old := fstest.MapFS{"00001_a.sql": files["00001_a.sql"], "00002_b.sql": files["00002_b.sql"]}
		m4, _ := newMigrator(t, open, old, migrate.Options{})
		res, err := m4.Up(ctx, migrate.UpOptions{})
		if err != nil || len(res.Ahead) != 1 || res.Ahead[0] != 3 {
			t.Fatalf("Up with the database ahead = %+v, %v; want Ahead [3]", res, err)
		}
		st, err := m4.Status(ctx)
		if err != nil || st.Versions[len(st.Versions)-1].State != migrate.Ahead {
			t.Fatalf("Status = %+v, %v; want the last version applied-no-file", st, err)
		}
		m5, _ := newMigrator(t, open, old, migrate.Options{Strict: true})
		if _, err := m5.Up(ctx, migrate.UpOptions{}); !errors.As(err, &ierr) || ierr.Problems[0].Kind != migrate.MissingFile {
			t.Fatalf("strict Up = %v, want missing-file", err)
		}
	})
}

func TestGoMigrations(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		files := threeTables()
		files["00004_seed.go"] = &fstest.MapFile{Data: []byte("package migrations\n")}
		// Unregistered: refused before anything is applied.
		m, db := newMigrator(t, open, files, migrate.Options{})
		_, err := m.Up(ctx, migrate.UpOptions{})
		var uerr *migrate.UnregisteredError
		if !errors.As(err, &uerr) || uerr.File != "00004_seed.go" {
			t.Fatalf("Up = %v, want UnregisteredError for 00004_seed.go", err)
		}
		if tableExists(t, db, "a") {
			t.Fatal("SQL migrations applied before the unregistered Go migration was refused")
		}
		seed := migrate.GoMigration{
			Version: 4,
			Up: func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO c (id) VALUES (42)")
				return err
			},
			Down: func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "DELETE FROM c")
				return err
			},
		}
		m2, _ := newMigrator(t, open, files, migrate.Options{}, seed)
		if res, err := m2.Up(ctx, migrate.UpOptions{}); err != nil || len(res.Applied) != 4 {
			t.Fatalf("Up = %+v, %v", res, err)
		}
		var n int
		if err := db.QueryRow("SELECT count(*) FROM c WHERE id = 42").Scan(&n); err != nil || n != 1 {
			t.Fatalf("seed rows = %d, %v", n, err)
		}
		if _, err := m2.Down(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT count(*) FROM c").Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows after down = %d, %v", n, err)
		}
	})
}

func TestLoadRejectsBadFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		files fstest.MapFS
		file  string // the file the error names
	}{
		"duplicate":    {fstest.MapFS{"001_a.sql": sqlFile("", ""), "1_b.sql": sqlFile("", "")}, "1_b.sql"},
		"no-separator": {fstest.MapFS{"001.sql": sqlFile("", "")}, "001.sql"},
		"zero":         {fstest.MapFS{"0_a.sql": sqlFile("", "")}, "0_a.sql"},
		"not-a-number": {fstest.MapFS{"v1_a.sql": sqlFile("", "")}, "v1_a.sql"},
		"parse":        {fstest.MapFS{"001_a.sql": {Data: []byte("CREATE TABLE a (id int);\n")}}, "001_a.sql"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := migrate.Load(tc.files, ".", nil, nil)
			var ferr *migrate.FileError
			var perr *sqlfile.ParseError
			switch {
			case errors.As(err, &ferr):
				if ferr.File != tc.file {
					t.Fatalf("Load: FileError names %q, want %q: %v", ferr.File, tc.file, err)
				}
			case errors.As(err, &perr):
				if perr.File != tc.file {
					t.Fatalf("Load: ParseError names %q, want %q: %v", perr.File, tc.file, err)
				}
			default:
				t.Fatalf("Load = %v (%T), want a FileError or ParseError naming %s", err, err, tc.file)
			}
		})
	}
	ok := fstest.MapFS{
		"README.md":     {Data: []byte("docs")},
		"002_notes.txt": {Data: []byte("x")},
		"embed.go":      {Data: []byte("package m")},
		"001_a_test.go": {Data: []byte("package m")},
		"001_a.sql":     sqlFile("", ""),
		"sub/002_b.sql": sqlFile("", ""),
		".hidden_1.sql": {Data: []byte("junk")},
	}
	migs, err := migrate.Load(ok, ".", nil, nil)
	if err != nil || len(migs) != 1 {
		t.Fatalf("Load = %d migrations, %v; want 1 (others ignored)", len(migs), err)
	}
}

// TestConcurrentRunners starts many runners at once on an empty database
// with data-only migrations: each must be applied exactly once and every
// runner must succeed.
func TestConcurrentRunners(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		files := fstest.MapFS{"00001_t.sql": sqlFile("CREATE TABLE t (n int);", "DROP TABLE t;")}
		for i := 2; i <= 30; i++ {
			files[fmt.Sprintf("%05d_row.sql", i)] = sqlFile(fmt.Sprintf("INSERT INTO t (n) VALUES (%d);", i), "")
		}
		migs := load(t, files)
		const runners = 16
		var wg sync.WaitGroup
		errs := make(chan error, runners)
		start := make(chan struct{})
		for range runners {
			db, d := open(t)
			m := migrate.New(db, d, migs, migrate.Options{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := m.Up(context.Background(), migrate.UpOptions{})
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("runner failed: %v", err)
			}
		}
		db, _ := open(t)
		var rows, distinct int
		if err := db.QueryRow("SELECT count(*), count(DISTINCT n) FROM t").Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows != 29 || distinct != 29 {
			t.Fatalf("rows = %d (distinct %d), want 29: a migration ran more or less than once", rows, distinct)
		}
		var versions int
		if err := db.QueryRow("SELECT count(*) FROM goose_db_version").Scan(&versions); err != nil || versions != 31 {
			t.Fatalf("goose_db_version rows = %d, %v; want 31", versions, err)
		}
	})
}

// TestDownFailsHalfWay stops a down chain at the failing migration with the
// versions already reverted recorded, as goose does.
func TestDownFailsHalfWay(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		files := threeTables()
		files["00002_b.sql"] = sqlFile("CREATE TABLE b (id int);", "DROP TABLE no_such_table;")
		m, db := newMigrator(t, open, files, migrate.Options{})
		if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := m.Down(ctx, 0)
		var merr *migrate.MigrationError
		if !errors.As(err, &merr) || merr.Version != 2 || merr.Direction != migrate.Down {
			t.Fatalf("Down = %v, want version 2's down to fail", err)
		}
		if len(res.Applied) != 1 || res.Applied[0].Version != 3 || res.To != 2 {
			t.Fatalf("result = %+v; want version 3 reverted and the database at 2", res)
		}
		wantVersion(t, m, 2)
		if tableExists(t, db, "c") || !tableExists(t, db, "b") {
			t.Fatal("tables do not match version 2")
		}
	})
}
