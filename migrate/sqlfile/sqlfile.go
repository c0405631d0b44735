// Package sqlfile parses goose-format SQL migration files.
//
// The format is the one read by github.com/pressly/goose/v3 (v3.30.0), and
// Parse accepts, rejects and splits files exactly as goose's provider does
// (except that it rejects NUL bytes):
// the same files are valid, and every statement is the same string goose
// would send to the database.
//
// A file is a list of lines. Annotation lines have the form
//
//	-- +goose Up
//	-- +goose Down
//	-- +goose StatementBegin
//	-- +goose StatementEnd
//	-- +goose NO TRANSACTION
//	-- +goose ENVSUB ON
//	-- +goose ENVSUB OFF
//
// matched case-insensitively, with surrounding spaces ignored. A line is an
// annotation line when, after trimming white space, it starts with "--" and
// it contains "+goose" anywhere; such a line must start at column 1 and hold
// exactly one known annotation. A comment that merely mentions "+goose" is
// therefore an error, as it is in goose.
//
// Between annotations, a statement ends at a line whose last
// white-space-separated word before the first word starting with "--" ends
// in ";". Nothing else is understood: a line of a string literal that ends
// in ";" ends the statement, "SELECT 1; /* c */" and "SELECT 1;-- c" do not
// (the last words are "*/" and "1;--"), and several statements on one line
// are sent together as one string. Lines between StatementBegin and
// StatementEnd are sent as one string whatever they hold.
package sqlfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/mfridman/interpolate"
)

// Statement is one SQL string to execute.
type Statement struct {
	// SQL is the text goose would send: the statement's lines (after ENVSUB
	// expansion) joined by "\n", with leading and trailing white space
	// removed. Line endings are "\n" even when the file uses "\r\n". It may
	// hold several SQL statements (a StatementBegin block, or several
	// statements on one line) and must be sent as one query with the simple
	// protocol. It is empty only in the rare case described at File.
	SQL string
	// Line is the 1-based line in the file of the first character of SQL.
	// For an empty SQL it is the line of the StatementBegin that produced
	// it.
	Line int
}

// File is a parsed migration file.
//
// Up and Down are nil when the direction has no statements: when the file
// has no Down section, or a section holds only comments. Running an empty
// direction succeeds and records the version, as in goose.
//
// An empty statement (SQL == "") comes only from goose's handling of
// StatementBegin blocks, kept for exact compatibility: a block whose lines
// are all white space emits one; a block holding nothing but comments and
// empty lines emits nothing by itself, but the next line that is not a
// comment, an empty line or an annotation, if it comes before another
// StatementBegin, a Down or the end of the file, is then dropped and an
// empty statement is emitted in its place.
type File struct {
	Up, Down []Statement
	// NoTransaction is true when the file holds "-- +goose NO TRANSACTION"
	// anywhere (before or after Up, in either section, any number of
	// times). It applies to both directions.
	NoTransaction bool
}

// ParseError reports a malformed migration file. Every error Parse returns
// is a *ParseError.
type ParseError struct {
	File string // the name given to Parse
	Line int    // 1-based line of the offending text
	Msg  string // lower-case, without file or line

	err error // underlying cause, for Unwrap; nil for syntax errors
}

// Error returns "file:line: message", as a compiler does.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the cause of a read error (for example bufio.ErrTooLong,
// or the reader's own error), or nil for a syntax error.
func (e *ParseError) Unwrap() error { return e.err }

// Parse reads one migration file from r and returns its statements.
//
// name is used only in errors. lookup resolves variables for the lines that
// follow "-- +goose ENVSUB ON" ($VAR, ${VAR}, ${VAR:-default},
// ${VAR-default} and the other forms of github.com/mfridman/interpolate, as
// goose expands them); a nil lookup means that no variable is set. Parse
// calls lookup only from the calling goroutine, and never reads the process
// environment itself. Without ENVSUB ON, text such as ${VAR} is left as is.
// Under ENVSUB ON, "$$" becomes "$" and "$1" is an error, as in goose.
//
// Lines may be up to 4 MiB long (goose's limit); "\r\n" line endings are
// read as "\n". A NUL byte anywhere is an error, where goose accepts it:
// no PostgreSQL query can hold one, and a file with NUL bytes is usually
// UTF-16.
//
// NUL bytes aside, a file is valid for Parse exactly when goose's provider
// accepts it: both directions are checked, so an error in the Down section
// fails the whole file. (goose's older package-level functions parse one direction at a
// time and would run the Up of such a file.) The error returned is the first
// one in the file, always a *ParseError.
//
// Parse is safe for concurrent use.
func Parse(name string, r io.Reader, lookup func(string) (string, bool)) (*File, error) {
	p := parserPool.Get().(*parser)
	defer p.release()
	p.name = name
	p.env = lookupEnv(lookup)
	return p.parse(r)
}

// A parser holds the state of one Parse call; its buffers are reused through
// parserPool.
type parser struct {
	name string
	env  lookupEnv
	file *File

	scanBuf []byte // initial scanner buffer
	stmt    []byte // the statement being collected, lines ending in "\n"

	line       int     // current line number
	section    section // where the current line is
	upLine     int     // line of "-- +goose Up"
	downLine   int     // line of "-- +goose Down"
	inBlock    bool    // between StatementBegin and StatementEnd
	blockLine  int     // line of the last StatementBegin
	stmtLine   int     // line of the first non-blank text in stmt, or 0
	envsub     bool    // ENVSUB ON in effect
	envsubLine int     // line of the last ENVSUB ON

	// emptyBlock is set after a StatementEnd that closed a block holding
	// nothing (only comments): goose then stays in its "statement ended"
	// state, and the next SQL line is swallowed to emit an empty statement.
	emptyBlock bool
}

type section int

const (
	beforeUp section = iota
	inUp
	inDown
)

const (
	// maxScanBuf is goose's limit on the scanner's buffer: a line, with its
	// line ending, must fit in 4 MiB.
	maxScanBuf     = 4 << 20
	initialScanBuf = 64 << 10
	// Statement buffers that grew beyond this are not kept in the pool.
	maxPooledStmt = 1 << 20
)

var parserPool = sync.Pool{New: func() any {
	return &parser{scanBuf: make([]byte, initialScanBuf)}
}}

func (p *parser) release() {
	stmt := p.stmt[:0]
	if cap(stmt) > maxPooledStmt {
		stmt = nil
	}
	*p = parser{scanBuf: p.scanBuf, stmt: stmt}
	parserPool.Put(p)
}

func (p *parser) parse(r io.Reader) (*File, error) {
	p.file = &File{}
	sc := bufio.NewScanner(r)
	// The scanner grows its buffer by doubling up to the maximum, so a
	// power-of-two start reaches exactly goose's cap and the longest
	// accepted line is the same as goose's.
	sc.Buffer(p.scanBuf, maxScanBuf)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, p.wrap(p.line+1, "line longer than 4 MiB", err)
		}
		return nil, p.wrap(p.line+1, "read: "+err.Error(), err)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.file, nil
}

func (p *parser) parseLine(line []byte) error {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		// goose would send it: PostgreSQL cannot take a NUL in a query
		// and the run fails with no line. Such a file is usually UTF-16.
		return p.errorf(p.line, "NUL byte at column %d: not a text file in UTF-8 or a single-byte encoding (UTF-16?)", i+1)
	}
	trimmed := bytes.TrimSpace(line)
	if p.section == beforeUp && len(trimmed) == 0 {
		return nil
	}
	isComment := bytes.HasPrefix(trimmed, commentPrefix)
	if isComment && bytes.Contains(line, gooseMarker) {
		return p.annotation(line)
	}
	// Comments and empty lines before a statement are dropped; once a
	// statement has started, every line up to its end is kept, comments
	// included. Only a truly empty line counts as empty here: a line of
	// spaces starts a statement (goose checks the buffer's length, not its
	// content).
	if len(p.stmt) == 0 && (isComment || len(line) == 0) {
		return nil
	}
	if p.section == beforeUp {
		if p.line == 1 && bytes.HasPrefix(line, utf8BOM) {
			// goose sees the mark as text, so "\ufeff-- +goose Up" is SQL.
			return p.errorf(p.line, "SQL before %q: the file starts with a UTF-8 byte order mark", "-- +goose Up")
		}
		return p.errorf(p.line, "SQL before %q", "-- +goose Up")
	}
	if p.emptyBlock {
		p.emptyBlock = false
		p.emit(p.blockLine)
		return nil
	}
	if p.envsub {
		expanded, err := interpolate.Interpolate(p.env, string(line))
		if err != nil {
			return p.errorf(p.line, "expand variables (ENVSUB ON at line %d): %s", p.envsubLine, lowerFirst(err.Error()))
		}
		line = []byte(expanded)
	}
	if p.stmtLine == 0 && len(bytes.TrimSpace(line)) > 0 {
		p.stmtLine = p.line
	}
	p.stmt = append(p.stmt, line...)
	p.stmt = append(p.stmt, '\n')
	if !p.inBlock && endsStatement(line) {
		p.emit(p.line)
	}
	return nil
}

var (
	commentPrefix = []byte("--")
	gooseMarker   = []byte("+goose")
	utf8BOM       = []byte("\ufeff")
)

func (p *parser) annotation(line []byte) error {
	a, err := parseAnnotation(line)
	if err != nil {
		return p.errorf(p.line, "%s", err)
	}
	switch a {
	case annUp:
		if p.section != beforeUp {
			return p.errorf(p.line, "duplicate %q (first at line %d)", "-- +goose Up", p.upLine)
		}
		p.section, p.upLine = inUp, p.line
	case annDown:
		switch {
		case p.section == beforeUp:
			return p.errorf(p.line, "%q before %q", "-- +goose Down", "-- +goose Up")
		case p.section == inDown && !p.inBlock:
			return p.errorf(p.line, "duplicate %q (first at line %d)", "-- +goose Down", p.downLine)
		case p.inBlock:
			return p.errorf(p.line, "%q inside the StatementBegin block of line %d", "-- +goose Down", p.blockLine)
		}
		if err := p.unterminated("before \"-- +goose Down\""); err != nil {
			return err
		}
		p.section, p.downLine, p.emptyBlock = inDown, p.line, false
		p.resetStmt()
	case annStatementBegin:
		switch {
		case p.section == beforeUp:
			return p.errorf(p.line, "%q before %q", "-- +goose StatementBegin", "-- +goose Up")
		case p.inBlock:
			return p.errorf(p.line, "%q inside the StatementBegin block of line %d", "-- +goose StatementBegin", p.blockLine)
		}
		// A statement left open before StatementBegin is not an error: its
		// lines become the start of the block's statement, as in goose.
		p.inBlock, p.blockLine, p.emptyBlock = true, p.line, false
	case annStatementEnd:
		if !p.inBlock {
			return p.errorf(p.line, "%q without %q", "-- +goose StatementEnd", "-- +goose StatementBegin")
		}
		p.inBlock = false
		if len(p.stmt) == 0 {
			p.emptyBlock = true
		} else {
			p.emit(p.blockLine)
		}
	case annNoTransaction:
		p.file.NoTransaction = true
	case annEnvsubOn:
		p.envsub, p.envsubLine = true, p.line
	case annEnvsubOff:
		p.envsub = false
	}
	return nil
}

// emit appends the collected statement to the current section. emptyLine is
// the line reported when the statement is empty.
func (p *parser) emit(emptyLine int) {
	s := Statement{SQL: string(bytes.TrimSpace(p.stmt)), Line: p.stmtLine}
	if s.SQL == "" {
		s.Line = emptyLine
	}
	if p.section == inDown {
		p.file.Down = append(p.file.Down, s)
	} else {
		p.file.Up = append(p.file.Up, s)
	}
	p.resetStmt()
}

func (p *parser) resetStmt() {
	p.stmt = p.stmt[:0]
	p.stmtLine = 0
}

// unterminated reports a collected statement that never reached its ";".
// Collected white space alone is not a statement.
func (p *parser) unterminated(where string) error {
	if p.stmtLine == 0 {
		return nil
	}
	return p.errorf(p.stmtLine, "statement not terminated by \";\" %s", where)
}

func (p *parser) finish() error {
	switch {
	case p.section == beforeUp:
		return p.errorf(1, "missing %q", "-- +goose Up")
	case p.inBlock:
		return p.errorf(p.blockLine, "%q without %q", "-- +goose StatementBegin", "-- +goose StatementEnd")
	}
	return p.unterminated("at end of file")
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &ParseError{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) wrap(line int, msg string, err error) error {
	return &ParseError{File: p.name, Line: line, Msg: msg, err: err}
}

// endsStatement reports whether line ends a statement: its last word before
// the first word that starts with "--" ends in ";". Words are separated by
// Unicode white space.
func endsStatement(line []byte) bool {
	var last []byte
	for w := range bytes.FieldsSeq(line) {
		if bytes.HasPrefix(w, commentPrefix) {
			break
		}
		last = w
	}
	return len(last) > 0 && last[len(last)-1] == ';'
}

type annotation int

const (
	annUp annotation = iota
	annDown
	annStatementBegin
	annStatementEnd
	annNoTransaction
	annEnvsubOn
	annEnvsubOff
)

var annotations = [...]struct {
	name string
	a    annotation
}{
	{"Up", annUp},
	{"Down", annDown},
	{"StatementBegin", annStatementBegin},
	{"StatementEnd", annStatementEnd},
	{"NO TRANSACTION", annNoTransaction},
	{"ENVSUB ON", annEnvsubOn},
	{"ENVSUB OFF", annEnvsubOff},
}

const annotationList = "Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON or ENVSUB OFF"

// parseAnnotation reads an annotation line (one that starts with "--" after
// trimming and contains "+goose"). The rules are goose's, character for
// character: every "--" anywhere on the line is deleted, then the first
// "+goose"; what remains, trimmed, must be one annotation name (compared
// with Unicode case folding). So "-- +goose Up -- note" is an error, and
// "--+goose Up--" is Up.
func parseAnnotation(line []byte) (annotation, error) {
	if line[0] == ' ' || line[0] == '\t' {
		// Only space and tab: a line starting with another white space
		// character (\v, \f, U+00A0...) is accepted, as in goose.
		return 0, errors.New(`indented annotation: a "--" line containing "+goose" must start at column 1`)
	}
	// Copy the line without its "--" (left to right, non-overlapping, as
	// strings.ReplaceAll removes them) into a buffer that stays on the stack
	// for ordinary lines.
	var buf [128]byte
	rest := buf[:0]
	for i := 0; i < len(line); {
		if bytes.HasPrefix(line[i:], commentPrefix) {
			i += len(commentPrefix)
			continue
		}
		rest = append(rest, line[i])
		i++
	}
	if i := bytes.Index(rest, gooseMarker); i >= 0 {
		rest = append(rest[:i], rest[i+len(gooseMarker):]...)
	}
	if bytes.Contains(rest, gooseMarker) {
		return 0, errors.New(`more than one "+goose" on the line`)
	}
	rest = bytes.TrimSpace(rest)
	if len(rest) == 0 {
		return 0, fmt.Errorf("empty annotation: want %s", annotationList)
	}
	for _, a := range annotations {
		if bytes.EqualFold(rest, []byte(a.name)) {
			return a.a, nil
		}
	}
	return 0, fmt.Errorf("unknown annotation %q: want %s", string(rest), annotationList)
}

// lookupEnv adapts a lookup function to interpolate.Env; nil has no
// variables.
type lookupEnv func(string) (string, bool)

var _ interpolate.Env = lookupEnv(nil)

func (f lookupEnv) Get(key string) (string, bool) {
	if f == nil {
		return "", false
	}
	return f(key)
}

// lowerFirst lower-cases the first letter of an error message from
// interpolate ("Expected identifier ..."), to keep ours lower-case.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r < utf8.RuneSelf && unicode.IsUpper(r) {
		return string(unicode.ToLower(r)) + s[n:]
	}
	return s
}
