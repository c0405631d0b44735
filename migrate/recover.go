package migrate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// settleMode says who settles a statement whose outcome the marker does
// not record.
type settleMode int

const (
	// settleAuto: up (or down) resuming by itself decides only what the
	// catalog proves, and otherwise stops with an Uncertain problem.
	settleAuto settleMode = iota
	// settleRan: the operator says the statement took effect (repair
	// --skip).
	settleRan
	// settleNotRan: the operator says it did not (repair --resume); what
	// the catalog proves still wins.
	settleNotRan
)

// markerDirection is the direction a marker was written for.
func markerDirection(r dialect.Record) Direction {
	if r.State == dialect.StateReverting {
		return Down
	}
	return Up
}

// settle decides where a migration interrupted half-way resumes: the
// index of the first statement to run. A statement recorded as started
// and never confirmed is settled once its server process is gone: from
// the catalog where PostgreSQL tells (CREATE INDEX CONCURRENTLY: valid
// means done, INVALID is dropped and built again, as PostgreSQL's
// documentation advises; IF [NOT] EXISTS forms run again harmlessly) or
// the dialect's Settler reads the statement's effect (MySQL DDL),
// else as mode says, else with an IntegrityError naming the statement and
// the two ways out. A file changed since the marker was written is
// refused unless force.
func (m *Migrator) settle(ctx context.Context, q dialect.Querier, mig *Migration, rec dialect.Record, mode settleMode, force bool) (int, error) {
	dir := markerDirection(rec)
	stmts := mig.Statements(dir)
	p := m.markerProblem(rec)
	if !mig.MatchesChecksum(rec.Checksum) && !force {
		p.Changed = true
		return 0, &IntegrityError{Problems: []Problem{p}}
	}
	k := min(rec.Statement, len(stmts))
	if k == len(stmts) {
		return k, nil
	}
	if mode == settleRan {
		m.log.Info("recorded as done by the operator", "version", mig.Version, "file", mig.Source, "line", stmts[k].Line)
		return k + 1, nil
	}
	s := stmts[k]
	ic, hasIndexes := m.dialect.(dialect.IndexChecker)
	if rec.InFlight && hasIndexes && rec.Pid != 0 {
		// The runner's client may be gone while its server process still
		// runs the statement (a CREATE INDEX CONCURRENTLY goes on
		// building): wait for it to end before reading the catalog.
		err := m.waitInterrupted(ctx, rec, func() (bool, error) { return ic.BackendBusy(ctx, q, rec.Pid, rec.Updated) })
		if err != nil {
			return 0, err
		}
	}
	if st, ok := m.dialect.(dialect.Settler); ok && rec.InFlight {
		// MySQL finishes a statement whose client died: once its
		// connection is gone, the catalog shows what it did.
		var o dialect.Outcome
		err := m.waitInterrupted(ctx, rec, func() (busy bool, err error) {
			o, busy, err = st.Settle(ctx, q, s.SQL, rec.Pid, rec.Updated)
			return busy, err
		})
		if err != nil {
			return 0, err
		}
		switch o {
		case dialect.Done:
			m.log.Info("the interrupted statement took effect, the catalog shows", "version", mig.Version, "file", mig.Source, "line", s.Line)
			return k + 1, nil
		case dialect.NotDone:
			m.log.Info("the interrupted statement did not take effect, the catalog shows; running it again", "version", mig.Version, "file", mig.Source, "line", s.Line)
			return k, nil
		}
	}
	if table, name, ok := concurrentIndex(s.SQL); ok && hasIndexes {
		qualified, valid, err := ic.IndexValidity(ctx, q, table, name)
		if err != nil {
			return 0, fmt.Errorf("look up index %s: %w", name, err)
		}
		switch {
		case qualified != "" && valid && rec.InFlight:
			m.log.Info("the interrupted CREATE INDEX CONCURRENTLY completed", "index", qualified, "file", mig.Source, "line", s.Line)
			return k + 1, nil
		case qualified != "" && !valid:
			// Left INVALID by this migration's own failed or killed
			// build: PostgreSQL's documented recovery is to drop it and
			// build it again.
			m.log.Info("dropping the INVALID index an interrupted CREATE INDEX CONCURRENTLY left, to build it again", "index", qualified, "file", mig.Source, "line", s.Line)
			if err := ic.DropIndex(ctx, q, qualified); err != nil {
				return 0, fmt.Errorf("drop INVALID index %s: %w", qualified, err)
			}
		}
		return k, nil
	}
	if !rec.InFlight || rerunnable(s.SQL) || mode == settleNotRan {
		return k, nil
	}
	p.Kind = Uncertain
	return 0, &IntegrityError{Problems: []Problem{p}}
}

// waitInterrupted waits until busy says the interrupted runner's server
// process no longer runs anything (its client may be gone while the
// server finishes the statement).
func (m *Migrator) waitInterrupted(ctx context.Context, rec dialect.Record, busy func() (bool, error)) error {
	for {
		b, err := busy()
		if err != nil {
			return fmt.Errorf("look for the interrupted runner's server process %d: %w", rec.Pid, err)
		}
		if !b {
			return nil
		}
		m.log.Info("waiting for the interrupted statement's server process to end", "pid", rec.Pid, "version", rec.Version)
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// checkIndexBuilt fails when stmt is a CREATE INDEX CONCURRENTLY whose
// index is INVALID after it returned: an IF NOT EXISTS form skips an
// index an earlier build left INVALID, and must not be recorded as done.
func (m *Migrator) checkIndexBuilt(ctx context.Context, q dialect.Querier, stmt string) error {
	ic, ok := m.dialect.(dialect.IndexChecker)
	if !ok {
		return nil
	}
	table, name, ok := concurrentIndex(stmt)
	if !ok {
		return nil
	}
	qualified, valid, err := ic.IndexValidity(ctx, q, table, name)
	if err != nil {
		return fmt.Errorf("check index %s: %w", name, err)
	}
	if qualified != "" && !valid {
		return fmt.Errorf("index %s is INVALID (an earlier CREATE INDEX CONCURRENTLY failed, and IF NOT EXISTS skipped it); shiplock up drops and builds it again", qualified)
	}
	return nil
}

// stopRequested reports whether Options.Stop is closed.
func (m *Migrator) stopRequested() bool {
	if m.opts.Stop == nil {
		return false
	}
	select {
	case <-m.opts.Stop:
		return true
	default:
		return false
	}
}

// graceWatch watches Options.Stop while a statement runs on the session
// with server process pid: StopGrace after Stop closes, it cancels the
// statement from another session. The returned function ends the watch
// and returns once no cancel can be on its way.
func (m *Migrator) graceWatch(ctx context.Context, pid int64) func() {
	c, ok := m.dialect.(dialect.Canceller)
	if m.opts.Stop == nil || m.opts.StopGrace <= 0 || !ok || pid == 0 {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		if !m.graceOver(done) {
			return
		}
		m.log.Warn("stop: the statement in flight outlasted its grace, cancelling it", "grace", m.opts.StopGrace, "pid", pid)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.CancelBackend(cctx, m.db, pid); err != nil {
			m.log.Warn("cancel the statement in flight", "err", err)
		}
	}()
	return func() { close(done); <-finished }
}

// token is a lexical unit of a statement: an upper-cased keyword or plain
// identifier, a quoted identifier as written, or one punctuation byte.
// Strings, comments and dollar-quoted bodies are skipped.
type token struct {
	text   string
	quoted bool
}

// lex returns the first max tokens of s and whether s holds more than one
// command (a ';' followed by anything but comments and space).
func lex(s string, max int) (toks []token, several bool) {
	semicolon := false
	emit := func(t token) bool {
		if semicolon {
			several = true
			return false
		}
		if len(toks) < max {
			toks = append(toks, t)
		}
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			depth := 0
			for i < len(s) {
				if strings.HasPrefix(s[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(s[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == ';':
			semicolon = true
			i++
		case c == '\'':
			// E'...' strings escape with backslashes; the E was read as a
			// word just before.
			escapes := len(toks) > 0 && !toks[len(toks)-1].quoted && toks[len(toks)-1].text == "E" && i > 0 && (s[i-1] == 'E' || s[i-1] == 'e')
			i++
			for i < len(s) {
				if escapes && s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i += 2
						continue
					}
					break
				}
				i++
			}
			i++
			if !emit(token{text: "'"}) {
				return toks, several
			}
		case c == '"':
			j := i + 1
			for j < len(s) {
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			if !emit(token{text: s[i:min(j+1, len(s))], quoted: true}) {
				return toks, several
			}
			i = j + 1
		case c == '$':
			j := i + 1
			for j < len(s) && (isIdentByte(s[j]) && !(s[j] >= '0' && s[j] <= '9' && j == i+1)) {
				j++
			}
			if j < len(s) && s[j] == '$' {
				tag := s[i : j+1]
				end := strings.Index(s[j+1:], tag)
				if end < 0 {
					i = len(s)
				} else {
					i = j + 1 + end + len(tag)
				}
				if !emit(token{text: "$"}) {
					return toks, several
				}
				continue
			}
			i++ // a parameter like $1
			if !emit(token{text: "$"}) {
				return toks, several
			}
		case isIdentByte(c):
			j := i
			for j < len(s) && (isIdentByte(s[j]) || s[j] == '$') {
				j++
			}
			if !emit(token{text: strings.ToUpper(s[i:j])}) {
				return toks, several
			}
			i = j
		default:
			if !emit(token{text: string(c)}) {
				return toks, several
			}
			i++
		}
	}
	return toks, several
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// words reports whether toks starts with the unquoted keywords ws.
func words(toks []token, ws ...string) bool {
	if len(toks) < len(ws) {
		return false
	}
	for i, w := range ws {
		if toks[i].quoted || toks[i].text != w {
			return false
		}
	}
	return true
}

// concurrentIndex recognises one command "CREATE [UNIQUE] INDEX
// CONCURRENTLY [IF NOT EXISTS] name ON [ONLY] table": the table as
// written (possibly schema-qualified) and the index name as written. An
// unnamed index cannot be looked up.
func concurrentIndex(stmt string) (table, name string, ok bool) {
	toks, several := lex(stmt, 16)
	if several {
		return "", "", false
	}
	switch {
	case words(toks, "CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"):
		toks = toks[4:]
	case words(toks, "CREATE", "INDEX", "CONCURRENTLY"):
		toks = toks[3:]
	default:
		return "", "", false
	}
	if words(toks, "IF", "NOT", "EXISTS") {
		toks = toks[3:]
	}
	if len(toks) < 3 || !isIdent(toks[0]) || !words(toks[1:], "ON") {
		return "", "", false
	}
	name = identText(toks[0])
	toks = toks[2:]
	if words(toks, "ONLY") {
		toks = toks[1:]
	}
	if len(toks) == 0 || !isIdent(toks[0]) {
		return "", "", false
	}
	table = identText(toks[0])
	if len(toks) >= 3 && toks[1].text == "." && isIdent(toks[2]) {
		table += "." + identText(toks[2])
	}
	return table, name, true
}

func isIdent(t token) bool {
	return t.quoted || (len(t.text) > 0 && isIdentByte(t.text[0]) && !(t.text[0] >= '0' && t.text[0] <= '9'))
}

// identText writes an identifier back for the catalog: quoted as written,
// else lower-cased as PostgreSQL folds it.
func identText(t token) string {
	if t.quoted {
		return t.text
	}
	return strings.ToLower(t.text)
}

// rerunnable reports whether running stmt again after it may have taken
// effect changes nothing: one command of an IF [NOT] EXISTS form, CREATE
// OR REPLACE, or ALTER TYPE ... ADD VALUE IF NOT EXISTS.
func rerunnable(stmt string) bool {
	toks, several := lex(stmt, 12)
	if several || len(toks) == 0 {
		return false
	}
	// The IF [NOT] EXISTS clause must come among the leading keywords, as
	// in CREATE [UNIQUE] INDEX [CONCURRENTLY] IF NOT EXISTS or DROP TABLE
	// IF EXISTS, not inside the statement's body.
	leading := func(limit int, clause ...string) bool {
		for i := 1; i < len(toks) && i <= limit; i++ {
			if words(toks[i:], clause...) {
				return true
			}
			if toks[i].quoted || !isIdent(toks[i]) {
				return false
			}
		}
		return false
	}
	switch {
	case words(toks, "CREATE", "OR", "REPLACE"):
		return true
	case words(toks, "CREATE"):
		return leading(5, "IF", "NOT", "EXISTS")
	case words(toks, "DROP"):
		return leading(4, "IF", "EXISTS")
	case words(toks, "ALTER", "TYPE"):
		// ALTER TYPE name ADD VALUE IF NOT EXISTS 'v' [BEFORE|AFTER 'w']
		for i := 2; i+5 < len(toks)+1 && i < 6; i++ {
			if words(toks[i:], "ADD", "VALUE", "IF", "NOT", "EXISTS") {
				return true
			}
		}
	}
	return false
}

// graceOver waits until Options.StopGrace has passed after Options.Stop
// closed (true), or done closes first (false).
func (m *Migrator) graceOver(done <-chan struct{}) bool {
	select {
	case <-m.opts.Stop:
	case <-done:
		return false
	}
	t := time.NewTimer(m.opts.StopGrace)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
