package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

var _ dialect.Settler = Dialect{}

// Settle implements dialect.Settler. MariaDB and MySQL run a DDL statement
// to its end after its client died, then drop the connection: while the
// connection pid exists and runs something, the outcome is not known yet
// (busy). Then the statement's effect is read in information_schema:
// CREATE and DROP of a TABLE, VIEW or INDEX, RENAME TABLE, and ALTER TABLE
// clauses that add, drop or rename a column, an index or a named
// constraint (every clause must agree: all done, or none). Anything else,
// data statements included, is Unknown; so is a half-applied change.
// "Already exists" errors are never taken as proof.
func (Dialect) Settle(ctx context.Context, q dialect.Querier, stmt string, pid int64, since time.Time) (dialect.Outcome, bool, error) {
	busy, err := connectionBusy(ctx, q, pid, since)
	if err != nil || busy {
		return dialect.Unknown, busy, err
	}
	facts, ok := effects(stmt)
	if !ok {
		return dialect.Unknown, false, nil
	}
	after, before := true, true
	for _, f := range facts {
		a, b, err := f.eval(ctx, q)
		if err != nil {
			return dialect.Unknown, false, err
		}
		after, before = after && a, before && b
	}
	switch {
	case after && !before:
		return dialect.Done, false, nil
	case before && !after:
		return dialect.NotDone, false, nil
	}
	return dialect.Unknown, false, nil
}

// connectionBusy reports whether connection pid of this server incarnation
// (connection ids start again after a restart: a server started after
// since has not got it) exists and is not idle.
func connectionBusy(ctx context.Context, q dialect.Querier, pid int64, since time.Time) (bool, error) {
	if pid == 0 {
		return false, nil
	}
	var (
		name   string
		uptime int64
		now    int64
	)
	if err := q.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Uptime'").Scan(&name, &uptime); err != nil {
		return false, fmt.Errorf("read the server's uptime: %w", err)
	}
	if err := q.QueryRowContext(ctx, "SELECT UNIX_TIMESTAMP()").Scan(&now); err != nil {
		return false, err
	}
	if !since.IsZero() && now-uptime > since.Unix()+1 {
		return false, nil
	}
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND <> 'Sleep'", pid).Scan(&n)
	return n > 0, err
}

// fact is one thing a statement changes in the catalog: a table, column,
// index or constraint that exists after it and not before (or the
// reverse, present false), or one renamed.
type fact struct {
	kind    string // "table", "column", "index", "constraint"
	schema  string // "" for the current database
	table   string
	name    string // column, index or constraint; the table for "table"
	present bool   // the statement leaves it present (or absent)
	renamed string // for a rename: the new name; name is the old one
}

// eval says whether the catalog is as after the statement, and whether it
// is as before.
func (f fact) eval(ctx context.Context, q dialect.Querier) (after, before bool, err error) {
	if f.renamed != "" {
		old, err := f.exists(ctx, q, f.name)
		if err != nil {
			return false, false, err
		}
		nw, err := f.exists(ctx, q, f.renamed)
		if err != nil {
			return false, false, err
		}
		return !old && nw, old && !nw, nil
	}
	ok, err := f.exists(ctx, q, f.name)
	if err != nil {
		return false, false, err
	}
	return ok == f.present, ok != f.present, nil
}

func (f fact) exists(ctx context.Context, q dialect.Querier, name string) (bool, error) {
	schema := sql.NullString{String: f.schema, Valid: f.schema != ""}
	var query string
	args := []any{schema, f.table, name}
	switch f.kind {
	case "table":
		query = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?"
		args = []any{schema, name}
	case "column":
		query = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?"
	case "index":
		query = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = ?"
	case "constraint":
		query = "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?"
	default:
		return false, fmt.Errorf("unknown catalog object %q", f.kind)
	}
	var n int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("read information_schema: %w", err)
	}
	return n > 0, nil
}

// effects returns what stmt changes in the catalog, when it is one
// statement of a form whose effect can be read there.
func effects(stmt string) ([]fact, bool) {
	if strings.Contains(stmt, "/*!") || strings.Contains(stmt, "/*M!") {
		return nil, false // executable comments: the server reads more than we do
	}
	p := &parser{toks: tokens(stmt)}
	if p.toks == nil {
		return nil, false
	}
	var (
		facts []fact
		ok    bool
	)
	switch {
	case p.accept("CREATE"):
		facts, ok = p.create()
	case p.accept("DROP"):
		facts, ok = p.drop()
	case p.accept("RENAME", "TABLE"):
		facts, ok = p.renameTables()
	case p.accept("ALTER"):
		p.accept("ONLINE")
		p.accept("IGNORE")
		if !p.accept("TABLE") {
			return nil, false
		}
		facts, ok = p.alterTable()
	}
	return facts, ok && len(facts) > 0 && p.done()
}

// tok is a lexical unit of a MySQL statement: a keyword or identifier
// (text as written, upper for keywords), a backquoted identifier
// (unquoted), a string literal ("'"), or one punctuation byte.
type tok struct {
	text   string
	upper  string
	quoted bool
}

// tokens splits a MySQL statement; nil when it holds more than one
// statement. Unlike ImplicitCommit's lex it keeps identifiers as written
// (table names are case-sensitive on Linux) and unquotes backquoted ones.
func tokens(s string) []tok {
	var out []tok
	end := false // a ';' was seen
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '#' || (c == '-' && strings.HasPrefix(s[i:], "--") && (i+2 == len(s) || s[i+2] <= ' ')):
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil
			}
			i += j + 4
			continue
		case c == ';':
			end = true
			i++
			continue
		}
		if end {
			return nil
		}
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j++
						continue
					}
					break
				}
			}
			out = append(out, tok{text: "'", upper: "'"})
			i = j + 1
		case c == '`':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '`' {
					if j+1 < len(s) && s[j+1] == '`' {
						b.WriteByte('`')
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			out = append(out, tok{text: b.String(), quoted: true})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, tok{text: s[i:j], upper: strings.ToUpper(s[i:j])})
			i = j
		default:
			out = append(out, tok{text: string(c), upper: string(c)})
			i++
		}
	}
	return out
}

type parser struct {
	toks []tok
	i    int
}

func (p *parser) peek(k int) tok {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return tok{}
}

// accept consumes the unquoted keywords ws when they come next.
func (p *parser) accept(ws ...string) bool {
	for k, w := range ws {
		t := p.peek(k)
		if t.quoted || t.upper != w {
			return false
		}
	}
	p.i += len(ws)
	return true
}

func (p *parser) done() bool { return p.i == len(p.toks) }

// keywords that cannot be an unquoted name where a name is read.
var reserved = map[string]bool{
	"INDEX": true, "KEY": true, "UNIQUE": true, "PRIMARY": true, "FOREIGN": true, "CONSTRAINT": true,
	"CHECK": true, "FULLTEXT": true, "SPATIAL": true, "PARTITION": true, "COLUMN": true, "IF": true,
	"ON": true, "TO": true, "AS": true, "USING": true, "PERIOD": true, "SYSTEM": true, "TABLE": true,
}

// name reads an identifier.
func (p *parser) name() (string, bool) {
	t := p.peek(0)
	if t.quoted || (t.upper != "" && isWordByte(t.text[0]) && !reserved[t.upper]) {
		p.i++
		return t.text, true
	}
	return "", false
}

// tableName reads [schema.]table.
func (p *parser) tableName() (schema, table string, ok bool) {
	a, ok := p.name()
	if !ok {
		return "", "", false
	}
	if p.peek(0).text == "." && !p.peek(0).quoted {
		p.i++
		b, ok := p.name()
		return a, b, ok
	}
	return "", a, true
}

// skipTo consumes tokens up to the next top-level ',' or the end, and
// reports whether it stopped at a ','.
func (p *parser) skipTo() bool {
	depth := 0
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.quoted {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
		case ",":
			if depth == 0 {
				p.i++
				return true
			}
		}
	}
	return false
}

func (p *parser) create() ([]fact, bool) {
	if p.accept("OR") || p.accept("TEMPORARY") {
		return nil, false // OR REPLACE proves nothing by presence
	}
	switch {
	case p.accept("TABLE"):
		p.accept("IF", "NOT", "EXISTS")
		s, t, ok := p.tableName()
		p.i = len(p.toks)
		return []fact{{kind: "table", schema: s, name: t, present: true}}, ok
	case p.peek(0).upper == "VIEW" || p.peek(0).upper == "ALGORITHM" || p.peek(0).upper == "DEFINER" || p.peek(0).upper == "SQL":
		for !p.done() && !p.accept("VIEW") {
			p.i++
		}
		p.accept("IF", "NOT", "EXISTS")
		s, t, ok := p.tableName()
		p.i = len(p.toks)
		return []fact{{kind: "table", schema: s, name: t, present: true}}, ok
	}
	p.accept("ONLINE")
	p.accept("OFFLINE")
	if !p.accept("UNIQUE") && !p.accept("FULLTEXT") {
		p.accept("SPATIAL")
	}
	if !p.accept("INDEX") {
		return nil, false
	}
	p.accept("IF", "NOT", "EXISTS")
	idx, ok := p.name()
	if !ok {
		return nil, false
	}
	if p.accept("USING") {
		p.i++
	}
	if !p.accept("ON") {
		return nil, false
	}
	s, t, ok := p.tableName()
	p.i = len(p.toks)
	return []fact{{kind: "index", schema: s, table: t, name: idx, present: true}}, ok
}

func (p *parser) drop() ([]fact, bool) {
	if p.accept("TEMPORARY") {
		return nil, false
	}
	if p.accept("INDEX") {
		p.accept("ONLINE")
		p.accept("IF", "EXISTS")
		idx, ok := p.name()
		if !ok || !p.accept("ON") {
			return nil, false
		}
		s, t, ok := p.tableName()
		p.i = len(p.toks)
		return []fact{{kind: "index", schema: s, table: t, name: idx}}, ok
	}
	if !p.accept("TABLE") && !p.accept("VIEW") {
		return nil, false
	}
	p.accept("IF", "EXISTS")
	var facts []fact
	for {
		s, t, ok := p.tableName()
		if !ok {
			return nil, false
		}
		facts = append(facts, fact{kind: "table", schema: s, name: t})
		if p.peek(0).text != "," || p.peek(0).quoted {
			break
		}
		p.i++
	}
	if !p.accept("RESTRICT") {
		p.accept("CASCADE")
	}
	return facts, true
}

func (p *parser) renameTables() ([]fact, bool) {
	var facts []fact
	for {
		s1, t1, ok := p.tableName()
		if !ok || !p.accept("TO") {
			return nil, false
		}
		s2, t2, ok := p.tableName()
		if !ok || s1 != s2 {
			return nil, false
		}
		facts = append(facts, fact{kind: "table", schema: s1, name: t1, renamed: t2})
		if p.peek(0).text != "," || p.peek(0).quoted {
			return facts, true
		}
		p.i++
	}
}

func (p *parser) alterTable() ([]fact, bool) {
	p.accept("IF", "EXISTS")
	s, t, ok := p.tableName()
	if !ok {
		return nil, false
	}
	var facts []fact
	renamed := false
	for !p.done() {
		f, neutral, ok := p.alterClause(s, t)
		if !ok {
			return nil, false
		}
		if !neutral {
			renamed = renamed || (f.kind == "table")
			facts = append(facts, f)
		}
		if !p.skipTo() && !p.done() {
			return nil, false
		}
	}
	if renamed && len(facts) > 1 {
		return nil, false // later clauses name the table by which name?
	}
	return facts, true
}

// alterClause reads the start of one ALTER TABLE clause: its fact, or
// neutral for ALGORITHM= and LOCK=, which change nothing in the catalog.
func (p *parser) alterClause(schema, table string) (f fact, neutral, ok bool) {
	f = fact{schema: schema, table: table}
	switch {
	case p.accept("ALGORITHM"), p.accept("LOCK"):
		return f, true, true
	case p.accept("ADD"):
		var sym string
		if p.accept("CONSTRAINT") {
			if p.peek(0).quoted || !reserved[p.peek(0).upper] {
				sym, _ = p.name()
			}
		}
		switch {
		case p.accept("PRIMARY", "KEY"):
			f.kind, f.name = "index", "PRIMARY"
		case p.accept("UNIQUE"), p.accept("FULLTEXT"), p.accept("SPATIAL"), p.peek(0).upper == "INDEX" || p.peek(0).upper == "KEY":
			if !p.accept("INDEX") {
				p.accept("KEY")
			}
			p.accept("IF", "NOT", "EXISTS")
			name, named := p.name()
			if !named {
				name = sym
			}
			f.kind, f.name = "index", name
		case p.peek(0).upper == "FOREIGN" || p.peek(0).upper == "CHECK":
			f.kind, f.name = "constraint", sym
		case sym != "":
			return f, false, false
		default:
			p.accept("COLUMN")
			p.accept("IF", "NOT", "EXISTS")
			if p.peek(0).text == "(" {
				return f, false, false
			}
			f.kind = "column"
			f.name, ok = p.name()
			if !ok {
				return f, false, false
			}
		}
		f.present = true
		return f, false, f.name != ""
	case p.accept("DROP"):
		switch {
		case p.accept("PRIMARY", "KEY"):
			f.kind, f.name = "index", "PRIMARY"
		case p.accept("INDEX"), p.accept("KEY"):
			p.accept("IF", "EXISTS")
			f.kind = "index"
			f.name, ok = p.name()
		case p.accept("FOREIGN", "KEY"), p.accept("CONSTRAINT"), p.accept("CHECK"):
			p.accept("IF", "EXISTS")
			f.kind = "constraint"
			f.name, ok = p.name()
		default:
			p.accept("COLUMN")
			p.accept("IF", "EXISTS")
			f.kind = "column"
			f.name, ok = p.name()
		}
		return f, false, f.name != ""
	case p.accept("RENAME"):
		switch {
		case p.accept("COLUMN"):
			f.kind = "column"
		case p.accept("INDEX"), p.accept("KEY"):
			f.kind = "index"
		default:
			if !p.accept("TO") {
				p.accept("AS")
			}
			s, nt, ok := p.tableName()
			if !ok || s != schema {
				return f, false, false
			}
			return fact{kind: "table", schema: schema, name: table, renamed: nt}, false, true
		}
		old, ok1 := p.name()
		if !p.accept("TO") {
			return f, false, false
		}
		nw, ok2 := p.name()
		f.name, f.renamed = old, nw
		return f, false, ok1 && ok2 && !strings.EqualFold(old, nw)
	case p.accept("CHANGE"):
		p.accept("COLUMN")
		p.accept("IF", "EXISTS")
		old, ok1 := p.name()
		nw, ok2 := p.name()
		f.kind, f.name, f.renamed = "column", old, nw
		return f, false, ok1 && ok2 && !strings.EqualFold(old, nw)
	}
	return f, false, false
}
