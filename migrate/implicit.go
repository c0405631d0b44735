package migrate

import (
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// implicitCommitter is the part of the dialect's statement runner that
// tells which statements commit by themselves (MySQL and MariaDB commit
// around DDL).
type implicitCommitter interface {
	ImplicitCommit(stmt string) bool
}

// firstImplicitCommit returns the first of stmts that commits the
// transaction around it by itself, if any.
func (m *Migrator) firstImplicitCommit(stmts []sqlfile.Statement) (sqlfile.Statement, bool) {
	ic, ok := m.dialect.(implicitCommitter)
	if !ok {
		return sqlfile.Statement{}, false
	}
	for _, s := range stmts {
		if ic.ImplicitCommit(s.SQL) {
			return s, true
		}
	}
	return sqlfile.Statement{}, false
}

// stepwise reports whether mig runs statement by statement only because
// it holds statements that commit by themselves: a transaction around the
// file would be false safety, so each statement runs alone with its
// progress recorded, and each data statement commits together with its
// progress record (so that its outcome is never uncertain). A NO
// TRANSACTION file, a run in --tx-mode none and a file with its own
// transaction control keep their own ways.
func (m *Migrator) stepwise(mig *Migration, dir Direction) bool {
	if mig.Kind != KindSQL || mig.NoTx || m.opts.TxMode == TxNone {
		return false
	}
	stmts := mig.Statements(dir)
	if hasTxControl(stmts) {
		return false
	}
	_, ok := m.firstImplicitCommit(stmts)
	return ok
}

// commitsItself reports whether stmt commits the transaction around it.
func (m *Migrator) commitsItself(stmt string) bool {
	ic, ok := m.dialect.(implicitCommitter)
	return ok && ic.ImplicitCommit(stmt)
}
