package lint

import "strings"

// stmtKind is the shape of one SQL statement, as far as the rules need it.
type stmtKind uint8

const (
	sOther stmtKind = iota
	sOtherDDL
	sBegin
	sCommit // COMMIT, END, ROLLBACK, ABORT
	sCreateTable
	sCreateIndex
	sDropIndex
	sAlterTable
	sDropTable
	sUpdate
	sDelete
	sInsert
	sReindex
	sVacuum
	sCluster
	sLock
	sSelect
)

// stmt is one SQL statement of a goose statement, recognised.
type stmt struct {
	kind stmtKind
	toks []token
	line int // line in the file of its first token

	table        string   // the table it acts on (key form, see name)
	tables       []string // DROP TABLE's list
	index        string   // CREATE/DROP INDEX's index
	concurrently bool
	idempotent   bool // IF [NOT] EXISTS, OR REPLACE, or harmless to repeat
	where        bool // UPDATE/DELETE with a WHERE clause
	full         bool // VACUUM FULL
	actions      []action
	cols         []colDef // CREATE TABLE's columns
	checks       []conDef // CREATE TABLE's CHECK constraints
	verb         string   // first words, for messages ("REINDEX")
	// ctes are the UPDATEs and DELETEs of a WITH's data-modifying
	// queries: they run whatever the main statement is.
	ctes []stmt
}

type actKind uint8

const (
	aOther actKind = iota
	aAddColumn
	aDropColumn
	aAlterType
	aSetNotNull
	aAddConstraint
	aValidate
	aRenameColumn
	aRenameTable
	aDropConstraint
	aRewrite // SET LOGGED/UNLOGGED, SET TABLESPACE, SET ACCESS METHOD
	aHarmless
)

type action struct {
	kind       actKind
	col        colDef
	name       string // column, constraint or new table name
	newName    string
	ifExists   bool // IF [NOT] EXISTS
	using      bool // ALTER TYPE ... USING
	con        conDef
	typeTokens []token
}

type colDef struct {
	name       string
	typ        string // normalised type, "" when unknown
	hasDefault bool
	volatile   string // the volatile function or feature of the default, if any
	notNull    bool
	// cons are the kinds of its inline constraints ("check", "unique",
	// "primary key", "foreign key"), as conDef.kind.
	cons []string
}

type conDef struct {
	name       string
	kind       string // "foreign key", "check", "unique", "primary key", "exclude"
	notValid   bool
	usingIndex bool
	notNullCol string // CHECK (col IS NOT NULL)
}

// splitStatements cuts a goose statement into SQL statements at the
// semicolons outside strings, comments and BEGIN ATOMIC bodies. base is the
// file line of text's first character.
func splitStatements(text string, base int, scs bool) []stmt {
	toks := tokenize(text, scs)
	var out []stmt
	start, atomic, cases := 0, false, 0
	cut := func(end int) {
		if end > start {
			out = append(out, recognise(toks[start:end], text, base))
		}
		start = end + 1
	}
	for i, t := range toks {
		switch {
		case t.kind == tOp && t.text == ";" && !atomic:
			cut(i)
		case t.is("atomic") && i > 0 && toks[i-1].is("begin"):
			atomic, cases = true, 0
		case atomic && t.is("case"):
			cases++
		case atomic && t.is("end"):
			if cases > 0 {
				cases--
			} else {
				atomic = false
			}
		}
	}
	cut(len(toks))
	return out
}

func lineAt(text string, off, base int) int {
	return base + strings.Count(text[:off], "\n")
}

// cursor reads a token list.
type cursor struct {
	t []token
	i int
}

func (c *cursor) peek(n int) token {
	if c.i+n < len(c.t) {
		return c.t[c.i+n]
	}
	return token{kind: tOp, text: ""}
}

func (c *cursor) done() bool { return c.i >= len(c.t) }

// accept consumes the words given, in order, when they all come next.
func (c *cursor) accept(words ...string) bool {
	for n, w := range words {
		if !c.peek(n).is(w) {
			return false
		}
	}
	c.i += len(words)
	return true
}

// name reads a possibly qualified name and returns its key: parts joined
// by ".", unquoted parts lower-cased, a "public." schema dropped (the
// default search_path), so public.t and t are the same table.
func (c *cursor) name() string {
	var parts []string
	for {
		t := c.peek(0)
		if t.kind != tIdent && t.kind != tQIdent {
			break
		}
		parts = append(parts, t.text)
		c.i++
		if !(c.peek(0).kind == tOp && c.peek(0).text == ".") {
			break
		}
		c.i++
	}
	if len(parts) > 1 && parts[0] == "public" {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// skipGroup skips a parenthesised group starting at the cursor.
func (c *cursor) skipGroup() {
	if !(c.peek(0).kind == tOp && c.peek(0).text == "(") {
		return
	}
	depth := 0
	for ; c.i < len(c.t); c.i++ {
		t := c.t[c.i]
		if t.kind != tOp {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				c.i++
				return
			}
		}
	}
}

// splitTop cuts toks at commas outside parentheses.
func splitTop(toks []token) [][]token {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		if t.kind != tOp {
			continue
		}
		switch t.text {
		case "(", "[":
			depth++
		case ")", "]":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	return append(out, toks[start:])
}

// nesting is +1 for "(", -1 for ")" and 0 for any other token.
func nesting(t token) int {
	if t.kind == tOp {
		switch t.text {
		case "(":
			return 1
		case ")":
			return -1
		}
	}
	return 0
}

// hasTop reports whether word occurs outside parentheses.
func hasTop(toks []token, word string) bool {
	depth := 0
	for _, t := range toks {
		depth += nesting(t)
		if depth == 0 && t.is(word) {
			return true
		}
	}
	return false
}

func recognise(toks []token, text string, base int) stmt {
	s := stmt{toks: toks, line: lineAt(text, toks[0].off, base)}
	c := &cursor{t: toks}
	switch first := toks[0]; {
	case first.is("begin") || first.is("start"):
		s.kind = sBegin
	case first.is("commit") || first.is("end") || first.is("rollback") || first.is("abort"):
		s.kind = sCommit
	case first.is("create"):
		recogniseCreate(c, &s)
	case first.is("alter"):
		c.i++
		if c.accept("table") {
			recogniseAlterTable(c, &s)
		} else {
			s.kind = sOtherDDL
			s.idempotent = hasIfExists(toks)
		}
	case first.is("drop"):
		c.i++
		switch {
		case c.accept("table"):
			s.kind, s.verb = sDropTable, "DROP TABLE"
			s.idempotent = c.accept("if", "exists")
			for _, part := range splitTop(c.t[c.i:]) {
				pc := &cursor{t: part}
				if n := pc.name(); n != "" {
					s.tables = append(s.tables, n)
				}
			}
		case c.accept("index"):
			s.kind, s.verb = sDropIndex, "DROP INDEX"
			s.concurrently = c.accept("concurrently")
			s.idempotent = c.accept("if", "exists")
			s.index = c.name()
		default:
			s.kind = sOtherDDL
			s.idempotent = hasIfExists(toks)
		}
	case first.is("with"):
		recogniseDML(c, &s, skipWith(c, &s, text, base))
	case first.is("update") || first.is("delete") || first.is("insert") || first.is("select") || first.is("values"):
		recogniseDML(c, &s, first.text)
	case first.is("reindex"):
		s.kind, s.verb = sReindex, "REINDEX"
		s.idempotent = true
		c.i++
		if c.peek(0).kind == tOp && c.peek(0).text == "(" {
			start := c.i
			c.skipGroup()
			s.concurrently = hasWord(c.t[start:c.i], "concurrently")
		}
		c.i++ // INDEX, TABLE, SCHEMA, DATABASE or SYSTEM
		if c.accept("concurrently") {
			s.concurrently = true
		}
		s.table = c.name()
	case first.is("vacuum"):
		s.kind, s.verb, s.idempotent = sVacuum, "VACUUM", true
		c.i++
		if c.peek(0).kind == tOp && c.peek(0).text == "(" {
			start := c.i
			c.skipGroup()
			s.full = fullOption(c.t[start:c.i])
		} else {
			s.full = c.accept("full")
		}
	case first.is("cluster"):
		s.kind, s.verb = sCluster, "CLUSTER"
		c.i++
		c.accept("verbose")
		s.table = c.name()
	case first.is("lock"):
		s.kind, s.verb = sLock, "LOCK TABLE"
		c.i++
		c.accept("table")
		c.accept("only")
		s.table = c.name()
	case first.is("comment") || first.is("grant") || first.is("revoke") || first.is("set") || first.is("analyze") || first.is("reset"):
		s.kind, s.idempotent = sOther, true
	default:
		s.kind = sOther
	}
	return s
}

// tokenText joins the tokens' texts with spaces.
func tokenText(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

func hasWord(toks []token, w string) bool {
	for _, t := range toks {
		if t.is(w) {
			return true
		}
	}
	return false
}

// hasIfExists reports IF EXISTS, IF NOT EXISTS or OR REPLACE among the
// first words of a statement.
func hasIfExists(toks []token) bool {
	for i := 0; i+1 < len(toks) && i < 10; i++ {
		if toks[i].is("if") && (toks[i+1].is("exists") || toks[i+1].is("not")) || toks[i].is("or") && toks[i+1].is("replace") {
			return true
		}
	}
	return false
}

// fullOption reads VACUUM's option list: FULL, FULL true/on/1.
func fullOption(group []token) bool {
	for i, t := range group {
		if t.is("full") {
			if i+1 >= len(group) {
				return true
			}
			n := group[i+1]
			return !(n.is("false") || n.is("off") || n.kind == tNumber && n.text == "0")
		}
	}
	return false
}

// skipWith moves past WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED]
// (query) [, ...], keeps the queries that are an UPDATE or DELETE in
// s.ctes, and returns the main verb.
func skipWith(c *cursor, s *stmt, text string, base int) string {
	c.i++
	c.accept("recursive")
	for !c.done() {
		c.name()
		c.skipGroup()
		if !c.accept("as") {
			break
		}
		c.accept("not")
		c.accept("materialized")
		start := c.i
		c.skipGroup()
		if q := c.t[start:c.i]; len(q) > 2 && (q[1].is("update") || q[1].is("delete")) {
			s.ctes = append(s.ctes, recognise(q[1:len(q)-1], text, base))
		}
		if !(c.peek(0).kind == tOp && c.peek(0).text == ",") {
			break
		}
		c.i++
	}
	return c.peek(0).text
}

func recogniseDML(c *cursor, s *stmt, verb string) {
	c.i = min(c.i+1, len(c.t)) // the verb
	rest := c.t[c.i:]
	switch verb {
	case "update", "delete":
		s.kind, s.verb = sUpdate, "UPDATE"
		if verb == "delete" {
			s.kind, s.verb = sDelete, "DELETE"
			c.accept("from")
		}
		c.accept("only")
		s.table = c.name()
		s.where = hasTop(rest, "where")
	case "insert":
		s.kind, s.verb = sInsert, "INSERT"
		c.accept("into")
		s.table = c.name()
	default:
		s.kind = sSelect
		s.idempotent = true
	}
}

func recogniseCreate(c *cursor, s *stmt) {
	c.i++
	s.idempotent = hasIfExists(c.t)
	c.accept("or", "replace")
	c.accept("unique")
	if c.accept("index") {
		s.kind, s.verb = sCreateIndex, "CREATE INDEX"
		s.concurrently = c.accept("concurrently")
		c.accept("if", "not", "exists")
		if !c.peek(0).is("on") {
			s.index = c.name()
		}
		if c.accept("on") {
			c.accept("only")
			s.table = c.name()
		}
		return
	}
	for _, w := range []string{"global", "local", "temporary", "temp", "unlogged"} {
		if c.accept(w) && (w == "temporary" || w == "temp") {
			// A temporary table is the session's own: nothing else sees it.
			s.kind = sOther
			return
		}
	}
	if !c.accept("table") {
		s.kind = sOtherDDL
		return
	}
	s.kind, s.verb = sCreateTable, "CREATE TABLE"
	c.accept("if", "not", "exists")
	s.table = c.name()
	if !(c.peek(0).kind == tOp && c.peek(0).text == "(") {
		return // AS, PARTITION OF, OF type: columns unknown
	}
	start := c.i
	c.skipGroup()
	end := c.i
	if t := c.t[end-1]; t.kind == tOp && t.text == ")" && end-1 > start {
		end-- // an unterminated list runs to the end
	}
	body := c.t[start+1 : end]
	for _, el := range splitTop(body) {
		if len(el) == 0 {
			continue
		}
		ec := &cursor{t: el}
		if isTableConstraint(el[0]) {
			con := readConstraint(ec)
			if con.kind == "check" {
				s.checks = append(s.checks, con)
			}
			continue
		}
		if el[0].is("like") {
			continue
		}
		s.cols = append(s.cols, readColumn(ec))
	}
}

func isTableConstraint(t token) bool {
	switch {
	case t.is("constraint"), t.is("primary"), t.is("unique"), t.is("check"), t.is("foreign"), t.is("exclude"):
		return true
	}
	return false
}

// readConstraint reads [CONSTRAINT name] FOREIGN KEY|CHECK|UNIQUE|PRIMARY
// KEY|EXCLUDE ... [NOT VALID].
func readConstraint(c *cursor) conDef {
	var con conDef
	if c.accept("constraint") {
		con.name = c.name()
	}
	rest := c.t[c.i:]
	switch {
	case c.accept("foreign", "key"):
		con.kind = "foreign key"
	case c.accept("check"):
		con.kind = "check"
		// CHECK (col IS NOT NULL): what lets SET NOT NULL skip its scan.
		g := c.t[c.i:]
		if len(g) >= 6 && g[0].text == "(" && (g[1].kind == tIdent || g[1].kind == tQIdent) &&
			g[2].is("is") && g[3].is("not") && g[4].is("null") && g[5].text == ")" {
			con.notNullCol = g[1].text
		}
	case c.accept("unique"):
		con.kind = "unique"
	case c.accept("primary", "key"):
		con.kind = "primary key"
	case c.accept("exclude"):
		con.kind = "exclude"
	}
	n := len(rest)
	con.notValid = n >= 2 && rest[n-2].is("not") && rest[n-1].is("valid")
	// USING INDEX name adopts an existing index; USING INDEX TABLESPACE x
	// only places the index the constraint builds.
	for i := 0; i+2 < n; i++ {
		if rest[i].is("using") && rest[i+1].is("index") && !rest[i+2].is("tablespace") {
			con.usingIndex = true
		}
	}
	return con
}

// columnStops end a column's type.
var columnStops = map[string]bool{
	"default": true, "not": true, "null": true, "constraint": true, "primary": true, "unique": true,
	"check": true, "references": true, "generated": true, "collate": true, "using": true,
}

// readColumn reads name type [constraints].
func readColumn(c *cursor) colDef {
	col := colDef{name: c.name()}
	start := c.i
	depth := 0
	for ; !c.done(); c.i++ {
		t := c.t[c.i]
		depth += nesting(t)
		if depth == 0 && t.kind == tIdent && columnStops[t.text] {
			break
		}
	}
	col.typ = normType(c.t[start:c.i])
	switch col.typ {
	case "serial", "bigserial", "smallserial":
		col.volatile = col.typ + " (nextval)"
		col.hasDefault = true
	}
	rest := c.t[c.i:]
	depth = 0
	for i := 0; i < len(rest); i++ {
		t := rest[i]
		// Only the constraint words outside parentheses: a CHECK's or a
		// generation expression's own words are not constraints.
		if depth += nesting(t); depth > 0 || t.kind != tIdent {
			continue
		}
		switch {
		case t.is("not") && i+1 < len(rest) && rest[i+1].is("null"):
			col.notNull = true
			i++
		case t.is("primary"):
			col.notNull = true
			col.cons = append(col.cons, "primary key")
		case t.is("unique"):
			col.cons = append(col.cons, "unique")
		case t.is("check"):
			col.cons = append(col.cons, "check")
		case t.is("references"):
			col.cons = append(col.cons, "foreign key")
		case t.is("set") && i+1 < len(rest) && rest[i+1].is("default"):
			i++ // ON DELETE SET DEFAULT: a referential action, not a default
		case t.is("default"):
			col.hasDefault = true
			if f := volatileCall(rest[i+1:]); f != "" {
				col.volatile = f
			}
		case t.is("generated"):
			col.hasDefault = true
			if hasWord(rest[i:], "identity") {
				col.volatile = "an identity column"
			} else if hasWord(rest[i:], "stored") {
				col.volatile = "a stored generated column"
			}
		}
	}
	return col
}

// volatileFuncs are the common volatile functions of a column default: a
// volatile default is evaluated for every existing row, so ADD COLUMN
// rewrites the table (a stable one such as now() is evaluated once).
var volatileFuncs = map[string]bool{
	"clock_timestamp": true, "random": true, "random_normal": true, "gen_random_uuid": true,
	"uuid_generate_v1": true, "uuid_generate_v1mc": true, "uuid_generate_v4": true, "uuidv4": true, "uuidv7": true,
	"timeofday": true, "nextval": true, "gen_random_bytes": true, "txid_current": true, "setval": true,
}

// volatileCall returns the first volatile function called in an
// expression (up to the next column constraint), or "".
func volatileCall(toks []token) string {
	depth := 0
	for i, t := range toks {
		depth += nesting(t)
		switch {
		case depth == 0 && t.kind == tIdent && columnStops[t.text] && t.text != "null":
			return ""
		case t.kind == tIdent && volatileFuncs[t.text] && i+1 < len(toks) && toks[i+1].text == "(":
			return t.text + "()"
		}
	}
	return ""
}

func recogniseAlterTable(c *cursor, s *stmt) {
	s.kind, s.verb = sAlterTable, "ALTER TABLE"
	c.accept("if", "exists")
	c.accept("only")
	s.table = c.name()
	if c.peek(0).text == "*" {
		c.i++
	}
	s.idempotent = true
	for _, part := range splitTop(c.t[c.i:]) {
		if len(part) == 0 {
			continue
		}
		a := readAction(&cursor{t: part})
		if !a.ifExists && a.kind != aHarmless && a.kind != aAlterType && a.kind != aValidate {
			s.idempotent = false
		}
		s.actions = append(s.actions, a)
	}
}

func readAction(c *cursor) action {
	var a action
	switch {
	case c.accept("add"):
		if isTableConstraint(c.peek(0)) {
			a.kind, a.con = aAddConstraint, readConstraint(c)
			return a
		}
		c.accept("column")
		a.kind = aAddColumn
		a.ifExists = c.accept("if", "not", "exists")
		a.col = readColumn(c)
		a.name = a.col.name
	case c.accept("drop"):
		if c.accept("constraint") {
			a.kind = aDropConstraint
			a.ifExists = c.accept("if", "exists")
			a.name = c.name()
			return a
		}
		c.accept("column")
		a.kind = aDropColumn
		a.ifExists = c.accept("if", "exists")
		a.name = c.name()
	case c.accept("alter"):
		c.accept("column")
		a.name = c.name()
		switch {
		case c.accept("type") || c.accept("set", "data", "type"):
			a.kind = aAlterType
			start := c.i
			for !c.done() && !c.peek(0).is("using") && !c.peek(0).is("collate") {
				if c.peek(0).text == "(" {
					c.skipGroup()
					continue
				}
				c.i++
			}
			a.typeTokens = c.t[start:c.i]
			a.col.typ = normType(a.typeTokens)
			a.using = c.peek(0).is("using")
		case c.accept("set", "not", "null"):
			a.kind = aSetNotNull
		default:
			// SET/DROP DEFAULT, DROP NOT NULL, SET STATISTICS, ...:
			// catalog only, and harmless to repeat.
			a.kind = aHarmless
		}
	case c.accept("validate", "constraint"):
		a.kind = aValidate
		a.name = c.name()
	case c.accept("rename"):
		switch {
		case c.accept("to"):
			a.kind = aRenameTable
			a.newName = c.name()
		case c.accept("constraint"):
			a.kind = aOther
		default:
			c.accept("column")
			a.kind = aRenameColumn
			a.name = c.name()
			c.accept("to")
			a.newName = c.name()
		}
	case c.accept("set", "logged") || c.accept("set", "unlogged") || c.accept("set", "tablespace") || c.accept("set", "access", "method"):
		a.kind = aRewrite
		a.name = upper(tokenText(c.t[:c.i]))
	case c.accept("set") || c.accept("reset") || c.accept("enable") || c.accept("disable") || c.accept("owner"):
		a.kind = aHarmless
	default:
		a.kind = aOther
	}
	return a
}

// typeAliases maps PostgreSQL's alternative type names to one spelling.
var typeAliases = map[string]string{
	"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
	"charactervarying": "varchar", "character": "char", "bool": "boolean",
	"float8": "doubleprecision", "float4": "real", "decimal": "numeric",
	"timestamptz": "timestampwithtimezone", "timestamp": "timestamp",
	"timestampwithouttimezone": "timestamp", "timetz": "timewithtimezone",
	"varbit": "bitvarying", "serial4": "serial", "serial8": "bigserial",
}

// normType joins a type's tokens without spaces and lower-cased, with its
// alias resolved: "character varying(20)" -> "varchar(20)".
func normType(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	s := b.String()
	base, args := s, ""
	if i := strings.IndexByte(s, '('); i >= 0 {
		base, args = s[:i], s[i:]
	}
	if a, ok := typeAliases[base]; ok {
		base = a
	}
	if strings.HasPrefix(base, "pg_catalog.") {
		base = strings.TrimPrefix(base, "pg_catalog.")
	}
	return base + args
}
