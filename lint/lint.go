// Package lint checks goose migration files for statements that lock busy
// tables, rewrite them, or break the pods of the previous release during a
// rolling update, without a database.
//
// It reads files with migrate/sqlfile (goose's own rules for Up and Down
// sections, NO TRANSACTION, StatementBegin/End and ENVSUB), tokenizes each
// statement by PostgreSQL's lexical rules and recognises the statement
// shapes the rules need (docs/safety.md says why there is no full parser).
//
// State carries across files: a table created by a file before the
// baseline (Input.Applied) exists; a table created by a file after it is
// new in this release, so a plain CREATE INDEX on it or dropping it again
// is harmless. A table that no file creates is taken to exist.
package lint

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// Input is one migration file.
type Input struct {
	// Name is shown in findings (a path).
	Name    string
	Version int64
	// Src is the file's content. When nil, Parsed is used (and no
	// suppression comment can be read).
	Src    []byte
	Parsed *sqlfile.File
	// Applied marks a file at or before the baseline: it is read for the
	// tables and columns it creates, and not checked.
	Applied bool
}

// Options tune a check. The zero value checks everything with
// standard_conforming_strings on and no ENVSUB variables.
type Options struct {
	// Disable lists rule ids not to report.
	Disable []string
	// NoStandardConformingStrings reads backslashes in '' strings as
	// escapes (standard_conforming_strings = off).
	NoStandardConformingStrings bool
	// Lookup resolves ENVSUB variables, as for migrate.Load.
	Lookup func(string) (string, bool)
}

// Finding is one hazard.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"-"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
	// Section is "up", "down" or "file".
	Section string `json:"section"`
}

// Report is the result of a check.
type Report struct {
	Findings []Finding
	// Checked is how many files were checked (not Applied); Read counts
	// every file.
	Checked, Read int
	// Suppressed counts findings silenced by a shiplock:ignore comment
	// with a reason.
	Suppressed int
}

// Max returns the highest severity found (0 when none).
func (r *Report) Max() Severity {
	var m Severity
	for _, f := range r.Findings {
		m = max(m, f.Severity)
	}
	return m
}

// Check reads the inputs in version order and reports the findings of
// the files that are not Applied. The only error is a file that goose
// would reject (*sqlfile.ParseError).
func Check(inputs []Input, o Options) (*Report, error) {
	in := append([]Input(nil), inputs...)
	sort.SliceStable(in, func(i, j int) bool { return in[i].Version < in[j].Version })
	c := &checker{
		opts:     o,
		scs:      !o.NoStandardConformingStrings,
		tables:   map[string]*table{},
		disabled: map[string]bool{},
		rep:      &Report{},
	}
	for _, id := range o.Disable {
		c.disabled[id] = true
	}
	for _, f := range in {
		if err := c.file(f); err != nil {
			return nil, err
		}
	}
	return c.rep, nil
}

type table struct {
	isNew  bool
	cols   map[string]*column
	checks map[string]*check // by constraint name
}

type column struct {
	typ   string
	isNew bool
}

type check struct {
	col       string
	validated bool
	tx        int // transaction of its ADD ... NOT VALID; 0 when done
}

type checker struct {
	opts     Options
	scs      bool
	tables   map[string]*table
	disabled map[string]bool
	rep      *Report
	txSeq    int
}

// fileCtx is the state of one file being checked.
type fileCtx struct {
	in       Input
	applied  bool
	down     bool
	notx     bool
	findings []Finding
	txs      map[int]*txInfo
	// downNew holds the tables a Down section creates (it changes no state).
	downNew map[string]bool
}

type txInfo struct {
	ddlTable, dmlTable string
	reported           bool
}

func (c *checker) file(in Input) error {
	f := in.Parsed
	if in.Src != nil {
		var err error
		f, err = sqlfile.Parse(in.Name, bytes.NewReader(in.Src), c.opts.Lookup)
		if err != nil {
			return err
		}
	}
	if f == nil {
		return fmt.Errorf("lint: %s: no content", in.Name)
	}
	c.rep.Read++
	fc := &fileCtx{in: in, applied: in.Applied, notx: f.NoTransaction, txs: map[int]*txInfo{}}
	up := c.section(fc, f.Up)
	if in.Applied {
		return nil
	}
	c.rep.Checked++
	fc.down, fc.downNew = true, map[string]bool{}
	down := c.section(fc, f.Down)
	c.hygiene(fc, f, up, down)
	fs := c.suppress(fc, f)
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Line < fs[j].Line })
	c.rep.Findings = append(c.rep.Findings, fs...)
	return nil
}

// section checks one direction's statements and returns them recognised,
// per goose statement.
func (c *checker) section(fc *fileCtx, stmts []sqlfile.Statement) [][]stmt {
	out := make([][]stmt, 0, len(stmts))
	fileTx, explicit := 0, 0
	if !fc.notx {
		fileTx = c.newTx()
	}
	for _, gs := range stmts {
		ss := splitStatements(gs.SQL, gs.Line, c.scs)
		out = append(out, ss)
		implicit := 0
		if len(ss) > 1 {
			// Several statements in one query string run as one implicit
			// transaction (unless they hold their own BEGIN/COMMIT).
			implicit = c.newTx()
		}
		for i := range ss {
			s := &ss[i]
			tx := fileTx
			if fc.notx {
				switch {
				case s.kind == sBegin:
					explicit = c.newTx()
				case s.kind == sCommit:
					explicit = 0
				}
				tx = explicit
				if tx == 0 {
					tx = implicit
				}
			}
			c.stmt(fc, s, tx)
		}
	}
	return out
}

func (c *checker) newTx() int {
	c.txSeq++
	return c.txSeq
}

// existing reports whether a table existed before this release.
func (c *checker) existing(fc *fileCtx, name string) bool {
	if name == "" || fc.downNew[name] {
		return false
	}
	t := c.tables[name]
	return t == nil || !t.isNew
}

func (c *checker) col(tbl, col string) *column {
	if t := c.tables[tbl]; t != nil {
		return t.cols[col]
	}
	return nil
}

func (c *checker) report(fc *fileCtx, line int, id, format string, args ...any) {
	if fc.applied || c.disabled[id] {
		return
	}
	r := ruleByID[id]
	sev, section := r.Severity, "up"
	if fc.down {
		section = "down"
		// Down sections run when a release is rolled back, by hand: their
		// lock hazards are worth a look, not a blocked deploy.
		if r.Class == Rolling || id == RuleDMLWithoutWhere || id == RuleDDLWithDML {
			return
		}
		if id != RuleConcurrentlyInTx {
			sev = min(sev, Warning)
		}
	}
	if r.Class == Hygiene {
		section = "file"
	}
	fc.findings = append(fc.findings, Finding{
		File: fc.in.Name, Line: line, Rule: id, Severity: sev,
		Message: fmt.Sprintf(format, args...), Fix: r.Fix, Section: section,
	})
}

func (c *checker) tx(fc *fileCtx, id int) *txInfo {
	if id == 0 {
		return nil
	}
	t := fc.txs[id]
	if t == nil {
		t = &txInfo{}
		fc.txs[id] = t
	}
	return t
}

func (c *checker) ddl(fc *fileCtx, s *stmt, txID int, tbl string) {
	if t := c.tx(fc, txID); t != nil && t.ddlTable == "" {
		t.ddlTable = tbl
		c.ddlWithDML(fc, s, t)
	}
}

func (c *checker) ddlWithDML(fc *fileCtx, s *stmt, t *txInfo) {
	if t.ddlTable != "" && t.dmlTable != "" && !t.reported {
		t.reported = true
		c.report(fc, s.line, RuleDDLWithDML, "DDL on %s and %s on %s in one transaction: the DDL's lock is held until the data change finishes", t.ddlTable, "an UPDATE/DELETE", t.dmlTable)
	}
}

// mutable reports whether statements change the state: Down sections are
// read against the state after the file's Up and change nothing.
func (fc *fileCtx) mutable() bool { return !fc.down }

func (c *checker) stmt(fc *fileCtx, s *stmt, txID int) {
	for i := range s.ctes {
		c.stmt(fc, &s.ctes[i], txID)
	}
	switch s.kind {
	case sCreateTable:
		if !fc.mutable() {
			fc.downNew[s.table] = true
			return
		}
		t := &table{isNew: !fc.applied, cols: map[string]*column{}, checks: map[string]*check{}}
		for _, col := range s.cols {
			t.cols[col.name] = &column{typ: col.typ, isNew: !fc.applied}
		}
		for i, ch := range s.checks {
			name := ch.name
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			t.checks[name] = &check{col: ch.notNullCol, validated: true}
		}
		c.tables[s.table] = t
	case sCreateIndex:
		if s.concurrently && txID != 0 {
			c.report(fc, s.line, RuleConcurrentlyInTx, "CREATE INDEX CONCURRENTLY inside a transaction block fails")
		}
		if !s.concurrently && c.existing(fc, s.table) {
			c.report(fc, s.line, RuleCreateIndex, "CREATE INDEX on existing table %s without CONCURRENTLY blocks writes for the whole build", s.table)
			c.ddl(fc, s, txID, s.table)
		}
	case sDropIndex:
		if s.concurrently && txID != 0 {
			c.report(fc, s.line, RuleConcurrentlyInTx, "DROP INDEX CONCURRENTLY inside a transaction block fails")
		}
	case sReindex:
		switch {
		case s.concurrently && txID != 0:
			c.report(fc, s.line, RuleConcurrentlyInTx, "REINDEX CONCURRENTLY inside a transaction block fails")
		case !s.concurrently:
			c.report(fc, s.line, RuleReindex, "REINDEX %s without CONCURRENTLY blocks writes for the whole rebuild", s.table)
		}
	case sVacuum:
		if s.full {
			c.report(fc, s.line, RuleVacuumFull, "VACUUM FULL rewrites under ACCESS EXCLUSIVE")
		}
	case sCluster:
		c.report(fc, s.line, RuleCluster, "CLUSTER %s rewrites it under ACCESS EXCLUSIVE", s.table)
	case sLock:
		c.report(fc, s.line, RuleLockTable, "LOCK TABLE %s holds an explicit lock to the end of the transaction", s.table)
	case sUpdate, sDelete:
		if !c.existing(fc, s.table) {
			return
		}
		if !s.where {
			c.report(fc, s.line, RuleDMLWithoutWhere, "%s of every row of existing table %s (no WHERE)", s.verb, s.table)
		}
		if t := c.tx(fc, txID); t != nil && t.dmlTable == "" {
			t.dmlTable = s.table
			c.ddlWithDML(fc, s, t)
		}
	case sDropTable:
		for _, name := range s.tables {
			if c.existing(fc, name) {
				c.report(fc, s.line, RuleDropTable, "DROP TABLE %s, which existed before this release", name)
				c.ddl(fc, s, txID, name)
			}
			if fc.mutable() {
				delete(c.tables, name)
			}
		}
	case sAlterTable:
		for i := range s.actions {
			c.action(fc, s, &s.actions[i], txID)
		}
	}
}

func (c *checker) action(fc *fileCtx, s *stmt, a *action, txID int) {
	tbl := s.table
	existing := c.existing(fc, tbl)
	t := c.tables[tbl]
	if t == nil && fc.mutable() {
		// A table no file created: it exists, with columns unknown.
		t = &table{cols: map[string]*column{}, checks: map[string]*check{}}
		c.tables[tbl] = t
	}
	if t == nil {
		t = &table{cols: map[string]*column{}, checks: map[string]*check{}}
	}
	mut := fc.mutable()
	if existing && a.kind != aHarmless && a.kind != aValidate && a.kind != aOther {
		c.ddl(fc, s, txID, tbl)
	}
	switch a.kind {
	case aAddColumn:
		if existing {
			if a.col.volatile != "" {
				c.report(fc, s.line, RuleVolatileDefault, "ADD COLUMN %s.%s with %s as its default rewrites the table", tbl, a.col.name, a.col.volatile)
			}
			if a.col.notNull && !a.col.hasDefault {
				c.report(fc, s.line, RuleAddNotNull, "ADD COLUMN %s.%s NOT NULL without a default", tbl, a.col.name)
			}
			c.inlineConstraints(fc, s, tbl, a.col)
		}
		if mut {
			t.cols[a.col.name] = &column{typ: a.col.typ, isNew: !fc.applied}
		}
	case aDropColumn:
		if existing && !c.colNew(tbl, a.name) {
			c.report(fc, s.line, RuleDropColumn, "DROP COLUMN %s.%s, which existed before this release", tbl, a.name)
		}
		if mut {
			delete(t.cols, a.name)
		}
	case aAlterType:
		old := ""
		if col := t.cols[a.name]; col != nil {
			old = col.typ
		}
		rewrite, narrow := typeChange(old, a.col.typ, a.using)
		if existing && rewrite {
			from := ""
			if old != "" {
				from = " from " + old
			}
			c.report(fc, s.line, RuleTypeRewrite, "ALTER COLUMN %s.%s TYPE%s to %s rewrites the table", tbl, a.name, from, a.col.typ)
		}
		if existing && narrow && !c.colNew(tbl, a.name) {
			c.report(fc, s.line, RuleNarrowType, "column %s.%s narrowed from %s to %s", tbl, a.name, old, a.col.typ)
		}
		if mut {
			if col := t.cols[a.name]; col != nil {
				col.typ = a.col.typ
			} else {
				t.cols[a.name] = &column{typ: a.col.typ}
			}
		}
	case aSetNotNull:
		if existing && !c.provenNotNull(t, a.name) {
			c.report(fc, s.line, RuleSetNotNull, "SET NOT NULL on %s.%s scans the table: no validated CHECK (%s IS NOT NULL)", tbl, a.name, a.name)
		}
	case aAddConstraint:
		con := a.con
		if existing {
			switch con.kind {
			case "foreign key", "check":
				if !con.notValid {
					c.report(fc, s.line, RuleConstraintNotValid, "ADD %s on existing table %s without NOT VALID checks every row under lock", upper(con.kind), tbl)
				}
			case "unique", "primary key", "exclude":
				if !con.usingIndex {
					c.report(fc, s.line, RuleUniqueConstraint, "ADD %s on existing table %s builds its index under ACCESS EXCLUSIVE", upper(con.kind), tbl)
				}
			}
		}
		if mut && con.name != "" {
			ch := &check{col: con.notNullCol, validated: !con.notValid}
			if con.notValid && existing {
				ch.tx = txID
				if txID == 0 {
					ch.tx = -1 // committed at once
				}
			}
			t.checks[con.name] = ch
		}
	case aValidate:
		ch := t.checks[a.name]
		if ch != nil && ch.tx > 0 && ch.tx == txID {
			c.report(fc, s.line, RuleValidateSameTx, "VALIDATE CONSTRAINT %s in the transaction that added it", a.name)
		}
		if mut && ch != nil {
			ch.validated, ch.tx = true, 0
		}
	case aRenameColumn:
		if existing && !c.colNew(tbl, a.name) {
			c.report(fc, s.line, RuleRenameColumn, "RENAME COLUMN %s.%s to %s", tbl, a.name, a.newName)
		}
		if mut {
			if col := t.cols[a.name]; col != nil {
				delete(t.cols, a.name)
				t.cols[a.newName] = col
			}
		}
	case aRenameTable:
		if existing {
			c.report(fc, s.line, RuleRenameTable, "RENAME TABLE %s to %s", tbl, a.newName)
		}
		if mut {
			delete(c.tables, tbl)
			c.tables[a.newName] = t
		}
	case aRewrite:
		if existing {
			c.report(fc, s.line, RuleTableRewrite, "ALTER TABLE %s %s rewrites it under ACCESS EXCLUSIVE", tbl, a.name)
		}
	case aDropConstraint:
		if mut {
			delete(t.checks, a.name)
		}
	}
}

// inlineConstraints reports the constraints written in an ADD COLUMN of an
// existing table: PostgreSQL adds them under the ADD COLUMN's ACCESS
// EXCLUSIVE lock, and a column constraint cannot be NOT VALID. A CHECK
// scans every row even though the new column is all NULL; a REFERENCES
// is validated by a scan only when the column has a default (without
// one PostgreSQL marks it valid at once); UNIQUE and PRIMARY KEY build
// their index.
func (c *checker) inlineConstraints(fc *fileCtx, s *stmt, tbl string, col colDef) {
	for _, kind := range col.cons {
		switch {
		case kind == "check":
			c.report(fc, s.line, RuleConstraintNotValid, "ADD COLUMN %s.%s with an inline CHECK checks every existing row under ACCESS EXCLUSIVE", tbl, col.name)
		case kind == "foreign key" && col.hasDefault:
			c.report(fc, s.line, RuleConstraintNotValid, "ADD COLUMN %s.%s with a default and an inline REFERENCES validates every existing row under lock", tbl, col.name)
		case kind == "unique" || kind == "primary key":
			c.report(fc, s.line, RuleUniqueConstraint, "ADD COLUMN %s.%s %s builds its index under ACCESS EXCLUSIVE", tbl, col.name, upper(kind))
		}
	}
}

func (c *checker) colNew(tbl, col string) bool {
	cl := c.col(tbl, col)
	return cl != nil && cl.isNew
}

// provenNotNull reports a validated CHECK (col IS NOT NULL) on t.
func (c *checker) provenNotNull(t *table, col string) bool {
	for _, ch := range t.checks {
		if ch.col == col && ch.validated {
			return true
		}
	}
	return false
}

func upper(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch >= 'a' && ch <= 'z' {
			b[i] = ch - 'a' + 'A'
		}
	}
	return string(b)
}
