package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// TxFunc is a Go migration run inside the migration's transaction.
type TxFunc func(ctx context.Context, tx *sql.Tx) error

// ConnFunc is a Go migration run outside any transaction, on the run's
// connection.
type ConnFunc func(ctx context.Context, conn *sql.Conn) error

// GoMigration is a migration written in Go, registered through
// Options.GoMigrations. Set Up/Down for a transactional migration, or
// UpNoTx/DownNoTx for one that must run outside a transaction; a nil
// function is an empty direction.
type GoMigration struct {
	Version  int64
	Source   string // the .go file name, for messages; may be empty
	Up, Down TxFunc
	// NoTx selects UpNoTx/DownNoTx.
	NoTx             bool
	UpNoTx, DownNoTx ConnFunc
}

// Kind says where a migration comes from.
type Kind int

const (
	KindSQL Kind = iota
	KindGo
	// KindGoUnregistered is a numbered .go file with no registered
	// GoMigration: the CLI cannot run it, and any plan reaching it fails
	// before the database is touched.
	KindGoUnregistered
)

// Migration is one version: a parsed SQL file or a Go migration.
type Migration struct {
	Version int64
	Source  string // file name relative to the migrations directory
	Kind    Kind
	// Checksum is the hex SHA-256 of the file's bytes ("" for Go).
	Checksum string
	// NoTx is true for a "-- +goose NO TRANSACTION" file or a NoTx Go
	// migration.
	NoTx bool

	sql *sqlfile.File
	gom *GoMigration
}

// Statements returns the SQL statements of one direction (nil for Go
// migrations).
func (m *Migration) Statements(d Direction) []sqlfile.Statement {
	if m.sql == nil {
		return nil
	}
	if d == Down {
		return m.sql.Down
	}
	return m.sql.Up
}

// ParseVersion returns the version encoded in a migration file name: the
// decimal number before the first "_", greater than zero, as goose reads it.
func ParseVersion(name string) (int64, error) {
	base := path.Base(name)
	before, _, ok := strings.Cut(base, "_")
	if !ok {
		return 0, errors.New("no '_' separating the version from the name")
	}
	n, err := strconv.ParseInt(before, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("version %q is not a decimal number", before)
	}
	if n < 1 {
		return 0, errors.New("version must be greater than zero")
	}
	return n, nil
}

// Load reads and parses every migration in dir of fsys, before any
// database is touched. lookup resolves ENVSUB variables (nil: none). Go
// migrations are matched to numbered .go files by version; a registered Go
// migration with no file is accepted too (embedded in the app's binary).
//
// It fails with a *sqlfile.ParseError for a malformed file and a
// *FileError for a badly named or duplicate one.
func Load(fsys fs.FS, dir string, goms []GoMigration, lookup func(string) (string, bool)) ([]*Migration, error) {
	if dir == "" {
		dir = "."
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations directory: %w", err)
	}
	registered := make(map[int64]*GoMigration, len(goms))
	for i := range goms {
		g := &goms[i]
		if g.Version < 1 {
			return nil, &FileError{File: g.Source, Msg: "go migration version must be greater than zero"}
		}
		if prev, dup := registered[g.Version]; dup {
			return nil, &FileError{File: g.Source, Msg: fmt.Sprintf("duplicate version %d (also registered by %s)", g.Version, prev.Source)}
		}
		registered[g.Version] = g
	}

	byVersion := make(map[int64]*Migration)
	var out, sqlFiles []*Migration
	add := func(m *Migration) error {
		if prev, dup := byVersion[m.Version]; dup {
			return &FileError{File: m.Source, Msg: fmt.Sprintf("duplicate version %d (also in %s)", m.Version, prev.Source)}
		}
		byVersion[m.Version] = m
		out = append(out, m)
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		full := path.Join(dir, name)
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		ext := path.Ext(name)
		numbered := len(name) > 0 && name[0] >= '0' && name[0] <= '9'
		switch {
		case ext == ".sql":
		case strings.HasSuffix(name, "_test.go"):
			continue
		case ext == ".go" && numbered:
		case numbered:
			return nil, &FileError{File: full, Msg: "numbered file is neither .sql nor .go; rename or move it"}
		default:
			continue // README.md, embed.go, ...
		}
		v, err := ParseVersion(name)
		if err != nil {
			return nil, &FileError{File: full, Msg: err.Error()}
		}
		if ext == ".go" {
			m := &Migration{Version: v, Source: name, Kind: KindGoUnregistered}
			if g := registered[v]; g != nil {
				m.Kind, m.NoTx, m.gom = KindGo, g.NoTx, g
				delete(registered, v)
			}
			if err := add(m); err != nil {
				return nil, err
			}
			continue
		}
		m := &Migration{Version: v, Source: name, Kind: KindSQL}
		if err := add(m); err != nil {
			return nil, err
		}
		sqlFiles = append(sqlFiles, m)
	}
	if err := readSQL(fsys, dir, sqlFiles, lookup); err != nil {
		return nil, err
	}
	for _, g := range registered {
		src := g.Source
		if src == "" {
			src = fmt.Sprintf("go migration %d", g.Version)
		}
		if err := add(&Migration{Version: g.Version, Source: src, Kind: KindGo, NoTx: g.NoTx, gom: g}); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// readSQL reads, checksums and parses the SQL files. Reading a thousand
// small files is mostly system calls, so a few goroutines share the work.
// On errors it returns the one of the file that sorts first, so the message
// does not depend on scheduling.
func readSQL(fsys fs.FS, dir string, migs []*Migration, lookup func(string) (string, bool)) error {
	errs := make([]error, len(migs))
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := min(len(migs), runtime.GOMAXPROCS(0))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(migs) {
					return
				}
				errs[i] = readOne(fsys, dir, migs[i], lookup)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func readOne(fsys fs.FS, dir string, m *Migration, lookup func(string) (string, bool)) error {
	full := path.Join(dir, m.Source)
	data, err := fs.ReadFile(fsys, full)
	if err != nil {
		return fmt.Errorf("read %s: %w", full, err)
	}
	f, err := sqlfile.Parse(full, bytes.NewReader(data), lookup)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m.Checksum, m.NoTx, m.sql = hex.EncodeToString(sum[:]), f.NoTransaction, f
	return nil
}
