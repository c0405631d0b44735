package migrate

import (
	"bytes"
	"crypto/sha256"
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
	"unicode/utf8"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

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
	// Checksum is the hex SHA-256 of the file's bytes, with "\r\n" line
	// endings read as "\n" ("" for Go).
	Checksum string
	// NoTx is true for a "-- +goose NO TRANSACTION" file or a NoTx Go
	// migration.
	NoTx bool

	sql *sqlfile.File
	gom *GoMigration
	// legacyChecksum is the checksum of the raw bytes when it differs from
	// Checksum (the file has "\r\n" line endings).
	legacyChecksum string
	fsys           fs.FS // where the file was read, for MatchesChecksum
	path           string
	// badUTF8 is, per direction, the line of the first statement text that
	// is not valid UTF-8 (0: none). A database whose client encoding is
	// UTF8 rejects it; LATIN1 or SQL_ASCII take the bytes, as from goose.
	badUTF8 [2]int
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
		return nil, &FileError{File: dir, Msg: "cannot read the migrations directory: " + cause(err)}
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
		if !isCandidate(name) {
			continue
		}
		v, err := ParseVersion(name)
		if err != nil {
			if path.Ext(name) == ".go" {
				continue // helpers.go, embed.go: goose skips them too
			}
			return nil, &FileError{File: full, Msg: err.Error()}
		}
		if err := checkRegular(fsys, full, e); err != nil {
			return nil, err
		}
		if path.Ext(name) == ".go" {
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

// isCandidate reports whether goose would read a directory entry as a
// migration: a name ending in ".sql", or in ".go" but not "_test.go"
// (goose v3.30.0 globs "*.sql" and "*.go"). Everything else beside them
// (README.md, 00001_notes.md, a .txt) is ignored, as goose ignores it.
// Hidden names (".00001_a.sql", an editor's lock file) are skipped too:
// their version does not parse, which the goose provider skips.
//
// A ".sql" name whose version does not parse is an error in Load, as in
// goose's command line (its provider skips it): a misspelled migration is
// never skipped silently.
func isCandidate(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "_test.go") {
		return false
	}
	ext := path.Ext(name)
	return ext == ".sql" || ext == ".go"
}

// checkRegular fails with a *FileError naming the path when a migration's
// name does not lead to a regular file: a directory, a broken symbolic
// link, a device or a pipe. goose would fail on it later, or hang reading a
// pipe.
func checkRegular(fsys fs.FS, full string, e fs.DirEntry) error {
	mode := e.Type()
	if mode&fs.ModeSymlink != 0 {
		fi, err := fs.Stat(fsys, full)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return &FileError{File: full, Msg: "broken symbolic link: its target does not exist"}
			}
			return &FileError{File: full, Msg: "cannot read: " + cause(err)}
		}
		mode = fi.Mode().Type()
	}
	switch {
	case mode.IsDir():
		return &FileError{File: full, Msg: "is a directory, named like a migration file; rename or move it"}
	case !mode.IsRegular():
		return &FileError{File: full, Msg: fmt.Sprintf("is not a regular file (%s)", mode)}
	}
	return nil
}

// cause is err without the *fs.PathError's operation and path, which the
// message says already ("permission denied").
func cause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
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
		return &FileError{File: full, Msg: "cannot read: " + cause(err)}
	}
	f, err := sqlfile.Parse(full, bytes.NewReader(data), lookup)
	if err != nil {
		return err
	}
	m.Checksum, m.legacyChecksum = checksums(data)
	m.fsys, m.path = fsys, full
	m.NoTx, m.sql = f.NoTransaction, f
	m.badUTF8[Up], m.badUTF8[Down] = invalidUTF8Line(f.Up), invalidUTF8Line(f.Down)
	return nil
}

// checksums returns the checksum of a file's content, with "\r\n" line
// endings read as "\n": goose sends the same statements either way, so
// converting a file's line endings does not edit it. legacy is the
// checksum of the raw bytes when they differ (shiplock recorded raw bytes
// before), else "".
func checksums(data []byte) (sum, legacy string) {
	if !bytes.Contains(data, crlf) {
		h := sha256.Sum256(data)
		return hex.EncodeToString(h[:]), ""
	}
	raw := sha256.Sum256(data)
	norm := sha256.Sum256(bytes.ReplaceAll(data, crlf, lf))
	return hex.EncodeToString(norm[:]), hex.EncodeToString(raw[:])
}

var crlf, lf = []byte("\r\n"), []byte("\n")

// MatchesChecksum reports whether a recorded checksum is this migration's
// file: its checksum, or one shiplock recorded before line endings stopped
// counting (the raw bytes of this file, or of this file with "\r\n"
// endings when it now has "\n" ones). The last case re-reads the file, so
// only a mismatch pays for it.
func (m *Migration) MatchesChecksum(recorded string) bool {
	if recorded == m.Checksum || (m.legacyChecksum != "" && recorded == m.legacyChecksum) {
		return true
	}
	if m.fsys == nil || m.legacyChecksum != "" {
		return false
	}
	data, err := fs.ReadFile(m.fsys, m.path)
	if err != nil || bytes.IndexByte(data, '\r') >= 0 {
		return false
	}
	h := sha256.Sum256(bytes.ReplaceAll(data, lf, crlf))
	return recorded == hex.EncodeToString(h[:])
}

// invalidUTF8Line returns the line of the first statement text that is
// not valid UTF-8, or 0. Only what is sent counts: a dropped comment may
// hold any bytes.
func invalidUTF8Line(stmts []sqlfile.Statement) int {
	for _, s := range stmts {
		if utf8.ValidString(s.SQL) {
			continue
		}
		// The statement's lines are joined by "\n" from Line on.
		for i, l := range strings.Split(s.SQL, "\n") {
			if !utf8.ValidString(l) {
				return s.Line + i
			}
		}
		return s.Line
	}
	return 0
}
