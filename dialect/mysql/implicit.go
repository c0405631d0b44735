package mysql

import "strings"

// ImplicitCommit reports whether stmt, run inside a transaction, commits it
// (MySQL 8.0 reference manual, "Statements That Cause an Implicit Commit";
// MariaDB's list is the same plus its sequences and packages), read
// conservatively: a statement is non-committing only when it is one of
// the data statements below; anything else, or anything unreadable,
// commits.
//
// Non-committing: SELECT (also parenthesised), WITH, INSERT, UPDATE,
// DELETE, REPLACE, DO, VALUES, TABLE, SHOW, EXPLAIN, DESCRIBE/DESC, USE,
// SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO SAVEPOINT, SET of user and
// system variables (except autocommit), SET NAMES / CHARACTER SET, SET
// TRANSACTION, and MariaDB's SET STATEMENT ... FOR by the statement after
// FOR, CREATE [OR REPLACE] TEMPORARY TABLE (... SELECT too) and DROP
// TEMPORARY TABLE. Committing, among others: CREATE, ALTER, DROP, RENAME,
// TRUNCATE, GRANT, REVOKE, SET PASSWORD, SET ROLE, SET autocommit, LOCK/UNLOCK
// TABLES, BEGIN, START TRANSACTION, COMMIT, ROLLBACK, ANALYZE, OPTIMIZE,
// REPAIR, CHECK, CHECKSUM, LOAD DATA, CACHE INDEX, FLUSH, RESET, INSTALL,
// CALL (the procedure may commit), EXECUTE, XA.
//
// Leading whitespace and comments (-- , #, /* */) are skipped; a versioned
// comment (/*!50001 ... */, MariaDB's /*M!100100 ... */) is read as the
// SQL it holds, whatever the version. A text holding several statements
// (a StatementBegin block) commits when any of them does.
func (Dialect) ImplicitCommit(stmt string) bool {
	toks, ok := lex(stmt)
	return !ok || anyStatement(toks, commits)
}

// anyStatement reports whether f holds for one of the statements, split at
// ';', of toks (a StatementBegin block holds several); empty statements
// are skipped.
func anyStatement(toks []token, f func([]token) bool) bool {
	for len(toks) > 0 {
		end := 0
		for end < len(toks) && !(toks[end].kind == tSymbol && toks[end].text == ";") {
			end++
		}
		if end > 0 && f(toks[:end]) {
			return true
		}
		if end == len(toks) {
			break
		}
		toks = toks[end+1:]
	}
	return false
}

// StepConflict refuses LOCK TABLES (and LOCK TABLE): it limits the
// session to the tables it names until UNLOCK TABLES, so the progress
// record written after it fails (error 1100), and rerunning the file
// fails the same way. mysqldump writes it around each table's rows unless
// given --skip-add-locks.
func (Dialect) StepConflict(stmt string) string {
	toks, ok := lex(stmt)
	locks := func(st []token) bool { return len(st) > 1 && st[0].is("LOCK") && st[1].is("TABLE", "TABLES") }
	if ok && anyStatement(toks, locks) {
		return "LOCK TABLES limits the session to the tables it names, so shiplock could not record the file's progress after it (error 1100); remove LOCK TABLES and UNLOCK TABLES from the file"
	}
	return ""
}

// commits classifies one statement's tokens.
func commits(toks []token) bool {
	first := toks[0]
	if first.kind == tSymbol && first.text == "(" {
		// (SELECT ...) UNION (SELECT ...)
		i := 0
		for i < len(toks) && toks[i].kind == tSymbol && toks[i].text == "(" {
			i++
		}
		return i == len(toks) || !toks[i].is("SELECT", "WITH", "VALUES", "TABLE")
	}
	if first.kind != tWord {
		return true
	}
	switch first.text {
	case "SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "REPLACE", "DO", "VALUES", "TABLE",
		"SHOW", "EXPLAIN", "DESCRIBE", "DESC", "USE", "SAVEPOINT":
		return false
	case "RELEASE":
		return !(len(toks) > 1 && toks[1].is("SAVEPOINT"))
	case "ROLLBACK":
		// ROLLBACK [WORK] TO [SAVEPOINT] name stays in the transaction.
		i := 1
		if i < len(toks) && toks[i].is("WORK") {
			i++
		}
		return !(i < len(toks) && toks[i].is("TO"))
	case "SET":
		return setCommits(toks[1:])
	case "CREATE", "DROP":
		// CREATE [OR REPLACE] TEMPORARY TABLE and DROP TEMPORARY TABLE
		// stay in the transaction (a file staging rows in one must keep
		// its transaction: resumed alone, a statement would find the
		// table gone with its session).
		i := 1
		if first.text == "CREATE" && i+1 < len(toks) && toks[i].is("OR") && toks[i+1].is("REPLACE") {
			i += 2
		}
		return !(i+1 < len(toks) && toks[i].is("TEMPORARY") && toks[i+1].is("TABLE"))
	}
	return true
}

// setCommits classifies what follows SET.
func setCommits(toks []token) bool {
	if len(toks) == 0 {
		return true
	}
	switch {
	case toks[0].is("PASSWORD", "ROLE", "DEFAULT"):
		return true
	case toks[0].is("NAMES", "CHARACTER", "CHARSET", "TRANSACTION"):
		return false
	case toks[0].is("STATEMENT"):
		// SET STATEMENT var = value [, ...] FOR statement
		depth := 0
		for i, t := range toks {
			switch {
			case t.kind == tSymbol && t.text == "(":
				depth++
			case t.kind == tSymbol && t.text == ")":
				depth--
			case depth == 0 && t.is("FOR") && i+1 < len(toks):
				return commits(toks[i+1:])
			}
		}
		return true
	case len(toks) > 1 && toks[0].is("GLOBAL", "SESSION", "LOCAL") && toks[1].is("TRANSACTION"):
		return false
	}
	// An assignment list: each target before its = or :=.
	depth, target := 0, true
	for _, t := range toks {
		switch {
		case t.kind == tSymbol && t.text == "(":
			depth++
		case t.kind == tSymbol && t.text == ")":
			depth--
		case depth == 0 && t.kind == tSymbol && t.text == ",":
			target = true
		case depth == 0 && t.kind == tSymbol && (t.text == "=" || t.text == ":="):
			target = false
		case target && t.kind == tWord && t.is("GLOBAL", "SESSION", "LOCAL", "PERSIST", "PERSIST_ONLY"):
		case target && t.kind == tWord && t.text == "AUTOCOMMIT":
			return true
		case target && t.kind == tVar:
			name := strings.TrimLeft(t.text, "@")
			if strings.HasPrefix(t.text, "@@") && name[strings.LastIndexByte(name, '.')+1:] == "AUTOCOMMIT" {
				return true
			}
		case target && t.kind == tQuoted:
			if t.text[0] == '`' && strings.EqualFold(strings.Trim(t.text, "`"), "autocommit") {
				return true
			}
		case target && t.kind == tSymbol && t.text == ".":
		case target && t.kind == tWord:
		default:
			if target {
				return true // not an assignment we can read
			}
		}
	}
	return false
}

type tokenKind int

const (
	tWord   tokenKind = iota // keyword or identifier, upper-cased
	tQuoted                  // `identifier`, 'string' or "string"
	tVar                     // @user or @@[scope.]system variable, upper-cased
	tSymbol                  // one character, or :=
)

type token struct {
	kind tokenKind
	text string
}

func (t token) is(words ...string) bool {
	if t.kind != tWord {
		return false
	}
	for _, w := range words {
		if t.text == w {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// lex splits MySQL text into tokens, dropping comments; ok is false for an
// unterminated comment, string or quoted identifier.
func lex(s string) (toks []token, ok bool) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "--") && (i+2 == len(s) || strings.IndexByte(" \t\n\r\f\v", s[i+2]) >= 0):
			// "-- " needs the space: "1--1" is arithmetic.
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*!") || strings.HasPrefix(s[i:], "/*M!"):
			// A versioned comment's content is SQL; its */ is dropped below.
			i += strings.IndexByte(s[i:], '!') + 1
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		case strings.HasPrefix(s[i:], "*/"):
			i += 2
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, false
			}
			i += 2 + end + 2
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for {
				if j >= len(s) {
					return nil, false
				}
				if s[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, token{tQuoted, s[i : j+1]})
			i = j + 1
		case c == '@':
			j := i + 1
			for j < len(s) && (s[j] == '@' || s[j] == '.' || isWordByte(s[j])) {
				j++
			}
			toks = append(toks, token{tVar, strings.ToUpper(s[i:j])})
			i = j
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{tWord, strings.ToUpper(s[i:j])})
			i = j
		case c == ':' && strings.HasPrefix(s[i:], ":="):
			toks = append(toks, token{tSymbol, ":="})
			i += 2
		default:
			toks = append(toks, token{tSymbol, string(c)})
			i++
		}
	}
	return toks, true
}
