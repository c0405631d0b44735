package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// runOwnTx runs a transactional SQL file that holds transaction-control
// statements exactly as goose does: BEGIN, then each statement alone, its
// reply read before the next is sent (after the file's own COMMIT, later
// statements run in autocommit and must not run once one failed), and a
// final commit. Progress is recorded per statement as for a NO
// TRANSACTION file, so a crash after the file's COMMIT is reported and
// resumable rather than re-run from the start.
func (m *Migrator) runOwnTx(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction) (MigrationResult, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return MigrationResult{}, &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Err: fmt.Errorf("begin: %w", err)}
	}
	// The version's record commits whatever the file left open (goose's
	// final COMMIT, a warning when nothing is open).
	r, err := m.runNoTx(ctx, conn, mig, dir, 0)
	if err != nil {
		// goose's tx.Rollback: ends what is still open; what the file
		// committed stays, and its progress record says how far it got.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return r, err
}

// hasTxControl reports whether any of stmts holds a transaction-control
// command (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT,
// SAVEPOINT, RELEASE, PREPARE TRANSACTION) at the top level: such a file
// cannot be pipelined, since a statement after its COMMIT runs outside
// the migration's transaction block.
func hasTxControl(stmts []sqlfile.Statement) bool {
	for _, s := range stmts {
		if isTxControl(s.SQL) {
			return true
		}
	}
	return false
}

// isTxControl reports whether a query string (which may hold several
// statements) has a top-level transaction-control statement. Whether a
// backslash escapes a quote in '...' depends on the session's
// standard_conforming_strings, which a migration may change: the string is
// read both ways, so a statement hidden by one reading is found by the
// other. A false positive only costs speed.
func isTxControl(sql string) bool {
	return txControlScan(sql, true) || txControlScan(sql, false)
}

var txControlWords = map[string]bool{
	"begin": true, "start": true, "commit": true, "end": true, "rollback": true,
	"abort": true, "savepoint": true, "release": true,
}

func txControlScan(s string, standardStrings bool) bool {
	atStart := true // at the start of a statement
	atomic := 0     // depth of BEGIN ATOMIC bodies (SQL-standard function bodies)
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLineComment(s, i)
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlockComment(s, i)
			continue
		case c == ';':
			atStart = true
			i++
			continue
		}
		start := atStart
		atStart = false
		switch {
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := strings.ToLower(s[i:j])
			if j < len(s) && s[j] == '\'' && (word == "e" || word == "x" || word == "b" || word == "n") {
				// E'...' always takes backslash escapes.
				i = skipString(s, j, word == "e" || !standardStrings)
				continue
			}
			next := nextWord(s, j)
			switch {
			case start && word == "end" && atomic > 0:
				atomic--
			case start && word == "prepare":
				if next == "transaction" {
					return true
				}
			case start && txControlWords[word]:
				return true
			case word == "begin" && next == "atomic":
				atomic++
			}
			i = j
		case c == '\'':
			i = skipString(s, i, !standardStrings)
		case c == '"':
			i = skipQuoted(s, i)
		case c == '$':
			i = skipDollar(s, i)
		default:
			i++
		}
	}
	return false
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// nextWord returns the lower-cased word after white space and comments
// from i ("" when something else follows).
func nextWord(s string, i int) string {
	for i < len(s) {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLineComment(s, i)
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlockComment(s, i)
		default:
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			return strings.ToLower(s[i:j])
		}
	}
	return ""
}

func skipLineComment(s string, i int) int {
	for i < len(s) && s[i] != '\n' {
		i++
	}
	return i
}

// skipBlockComment skips a /* */ comment; they nest in PostgreSQL.
func skipBlockComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipString skips a quoted string from the quote at i: two quotes in a
// row are one quote and, with backslashes, so is a backslash and a quote.
func skipString(s string, i int, backslashes bool) int {
	for i++; i < len(s); i++ {
		switch {
		case backslashes && s[i] == '\\':
			i++
		case s[i] == '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return i
}

func skipQuoted(s string, i int) int {
	for i++; i < len(s); i++ {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				i++
				continue
			}
			return i + 1
		}
	}
	return i
}

// skipDollar skips a dollar-quoted string ($$...$$, $tag$...$tag$) from
// i, or just the $ when none starts there ($1, a lone $).
func skipDollar(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] != '$' {
		if !isIdentStart(s[j]) {
			return i + 1
		}
		for j < len(s) && isIdentChar(s[j]) && s[j] != '$' {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		return i + 1
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}
