package lint

import "strings"

// The tokenizer follows PostgreSQL's lexical rules (scan.l) closely enough
// that keywords are never read out of strings, comments or quoted names:
// '' strings (backslash literal when standard_conforming_strings is on, an
// escape in E'' strings or when it is off), dollar quotes with tags, nested
// /* */ comments, -- comments, "" quoted identifiers and U& forms. It does
// not build a syntax tree: the recognisers in stmt.go read the token list.

type tokKind uint8

const (
	tIdent  tokKind = iota // unquoted word, lower-cased (keywords too)
	tQIdent                // "quoted identifier", exact
	tString                // any string constant, text without quotes (not unescaped)
	tNumber
	tParam // $1
	tOp    // one punctuation character, or "::"
)

type token struct {
	kind tokKind
	text string
	off  int // byte offset in the scanned text
}

func (t token) is(word string) bool { return t.kind == tIdent && t.text == word }

// lexer scans one goose statement's SQL.
type lexer struct {
	src string
	pos int
	// scs is standard_conforming_strings: on since PostgreSQL 9.1.
	scs bool
}

// tokens returns every token of src; an unterminated string, comment or
// quoted identifier runs to the end of the text (the server rejects such a
// file; the linter reads what is there).
func tokenize(src string, scs bool) []token {
	l := lexer{src: src, scs: scs}
	toks := make([]token, 0, len(src)/5+1)
	for {
		t, ok := l.next()
		if !ok {
			return toks
		}
		toks = append(toks, t)
	}
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func (l *lexer) next() (token, bool) {
	s := l.src
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case c == '-' && l.pos+1 < len(s) && s[l.pos+1] == '-':
			for l.pos < len(s) && s[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*':
			l.blockComment()
		default:
			return l.token(), true
		}
	}
	return token{}, false
}

// blockComment skips a /* */ comment; they nest in PostgreSQL.
func (l *lexer) blockComment() {
	s, depth := l.src, 0
	for l.pos < len(s) {
		switch {
		case s[l.pos] == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*':
			depth++
			l.pos += 2
		case s[l.pos] == '*' && l.pos+1 < len(s) && s[l.pos+1] == '/':
			depth--
			l.pos += 2
			if depth == 0 {
				return
			}
		default:
			l.pos++
		}
	}
}

func (l *lexer) token() token {
	s, start := l.src, l.pos
	c := s[start]
	// Prefixed strings: E'..', B'..', X'..', N'..', U&'..' and U&"..".
	if start+1 < len(s) {
		switch c {
		case 'e', 'E':
			if s[start+1] == '\'' {
				l.pos++
				return l.quoted(start, '\'', true, tString)
			}
		case 'b', 'B', 'x', 'X', 'n', 'N':
			if s[start+1] == '\'' {
				l.pos++
				return l.quoted(start, '\'', !l.scs, tString)
			}
		case 'u', 'U':
			if start+2 < len(s) && s[start+1] == '&' && (s[start+2] == '\'' || s[start+2] == '"') {
				l.pos += 2
				if s[l.pos] == '"' {
					return l.quoted(start, '"', false, tQIdent)
				}
				return l.quoted(start, '\'', !l.scs, tString)
			}
		}
	}
	switch {
	case c == '\'':
		return l.quoted(start, '\'', !l.scs, tString)
	case c == '"':
		return l.quoted(start, '"', false, tQIdent)
	case c == '$':
		return l.dollar(start)
	case isIdentStart(c):
		for l.pos < len(s) && isIdentCont(s[l.pos]) {
			l.pos++
		}
		return token{tIdent, lower(s[start:l.pos]), start}
	case c >= '0' && c <= '9' || c == '.' && start+1 < len(s) && s[start+1] >= '0' && s[start+1] <= '9':
		for l.pos < len(s) && (isIdentCont(s[l.pos]) || s[l.pos] == '.') {
			l.pos++
		}
		return token{tNumber, s[start:l.pos], start}
	case c == ':' && start+1 < len(s) && s[start+1] == ':':
		l.pos += 2
		return token{tOp, "::", start}
	}
	l.pos++
	return token{tOp, s[start:l.pos], start}
}

// quoted scans a string or quoted identifier whose opening quote is at
// l.pos; a doubled quote is the quote itself, and with backslash set a
// backslash escapes the next character.
func (l *lexer) quoted(start int, q byte, backslash bool, kind tokKind) token {
	s := l.src
	l.pos++ // opening quote
	body := l.pos
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case backslash && c == '\\':
			l.pos += 2
			continue
		case c == q:
			if l.pos+1 < len(s) && s[l.pos+1] == q {
				l.pos += 2
				continue
			}
			text := s[body:l.pos]
			l.pos++
			return token{kind, text, start}
		}
		l.pos++
	}
	if l.pos > len(s) {
		l.pos = len(s)
	}
	return token{kind, s[body:l.pos], start}
}

// dollar scans $1 (a parameter), $tag$...$tag$ or $$...$$.
func (l *lexer) dollar(start int) token {
	s := l.src
	i := start + 1
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		l.pos = i
		return token{tParam, s[start:i], start}
	}
	// A tag is an identifier without "$"; it cannot start with a digit.
	for i < len(s) && s[i] != '$' && isIdentCont(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != '$' || (i > start+1 && !isIdentStart(s[start+1])) {
		l.pos = start + 1
		return token{tOp, "$", start}
	}
	delim := s[start : i+1]
	body := i + 1
	end := strings.Index(s[body:], delim)
	if end < 0 {
		l.pos = len(s)
		return token{tString, s[body:], start}
	}
	end += body
	l.pos = end + len(delim)
	return token{tString, s[body:end], start}
}
