package lint

import "fmt"

// Severity orders findings; --fail-on compares against it.
type Severity int

const (
	Info Severity = iota + 1
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// ParseSeverity reads "info", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Info, Warning, Error} {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: want info, warning or error", s)
}

// Class groups rules by what they protect.
type Class string

const (
	// Lock: the statement holds a lock that blocks live traffic for as
	// long as a scan, rewrite or build takes (or fails in a transaction).
	Lock Class = "lock"
	// Rolling: the pods of the previous release, still serving during a
	// rolling update, break against the new schema.
	Rolling Class = "rolling-update"
	// Hygiene: the file itself (re-runs, Down section, suppressions).
	Hygiene Class = "file"
)

// Rule describes one check.
type Rule struct {
	ID       string
	Severity Severity
	Class    Class
	// Why is one line: what goes wrong.
	Why string
	// Fix is the safe rewrite.
	Fix string
}

// The rule ids.
const (
	RuleCreateIndex        = "create-index-lock"
	RuleConcurrentlyInTx   = "concurrently-in-tx"
	RuleVolatileDefault    = "volatile-default"
	RuleTypeRewrite        = "column-type-rewrite"
	RuleTableRewrite       = "table-rewrite"
	RuleSetNotNull         = "set-not-null-scan"
	RuleConstraintNotValid = "constraint-not-valid"
	RuleUniqueConstraint   = "unique-constraint-lock"
	RuleValidateSameTx     = "validate-same-tx"
	RuleReindex            = "reindex-lock"
	RuleVacuumFull         = "vacuum-full"
	RuleCluster            = "cluster"
	RuleLockTable          = "lock-table"
	RuleDDLWithDML         = "ddl-with-dml"
	RuleDMLWithoutWhere    = "dml-without-where"
	RuleDropColumn         = "drop-column"
	RuleRenameColumn       = "rename-column"
	RuleRenameTable        = "rename-table"
	RuleDropTable          = "drop-table"
	RuleNarrowType         = "narrow-type"
	RuleAddNotNull         = "add-not-null-no-default"
	RuleNotxIdempotent     = "notx-not-idempotent"
	RuleDownMissing        = "down-missing"
	RuleDownNotInverse     = "down-not-inverse"
	RuleBadIgnore          = "bad-ignore"
)

var rules = []Rule{
	{RuleCreateIndex, Error, Lock,
		"CREATE INDEX without CONCURRENTLY on a table that already exists blocks every write to it (SHARE lock) for the whole build",
		"CREATE INDEX CONCURRENTLY IF NOT EXISTS, alone in a file marked -- +goose NO TRANSACTION"},
	{RuleConcurrentlyInTx, Error, Lock,
		"CONCURRENTLY cannot run inside a transaction block: the migration fails (a goose file runs in one transaction, and several statements sent as one string form an implicit one)",
		"put the statement alone in a file marked -- +goose NO TRANSACTION"},
	{RuleVolatileDefault, Error, Lock,
		"ADD COLUMN with a volatile default (or serial, identity, stored generated) rewrites the whole table under ACCESS EXCLUSIVE",
		"ADD COLUMN without a default (or with a constant or now()); SET DEFAULT afterwards; backfill existing rows in batches"},
	{RuleTypeRewrite, Error, Lock,
		"ALTER COLUMN TYPE rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE, unless the change is binary-coercible (varchar(n) to a longer varchar or text, numeric to a larger precision)",
		"add a column of the new type, backfill it in batches, switch the application, drop the old column in a later release"},
	{RuleTableRewrite, Error, Lock,
		"SET LOGGED, SET UNLOGGED, SET TABLESPACE or SET ACCESS METHOD writes the whole table anew under ACCESS EXCLUSIVE: reads and writes wait for the whole copy",
		"choose persistence, tablespace and access method when the table is created; for a busy table, an online repack tool (pg_repack --tablespace) outside the migration, or a maintenance window"},
	{RuleSetNotNull, Error, Lock,
		"SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK (col IS NOT NULL) already proves it",
		"ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a later transaction; then SET NOT NULL (no scan, PostgreSQL 12+) and DROP CONSTRAINT c"},
	{RuleConstraintNotValid, Error, Lock,
		"ADD FOREIGN KEY or CHECK validates every existing row while holding a lock that blocks writes (ACCESS EXCLUSIVE for CHECK; SHARE ROW EXCLUSIVE on both tables for a foreign key); so does a CHECK written in ADD COLUMN, and a REFERENCES in ADD COLUMN with a default (a column constraint cannot be NOT VALID)",
		"ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later transaction (another file); for a new column, ADD COLUMN without the constraint first"},
	{RuleUniqueConstraint, Error, Lock,
		"ADD UNIQUE, PRIMARY KEY or EXCLUDE (also written in ADD COLUMN) builds its index under ACCESS EXCLUSIVE: reads and writes wait for the whole build",
		"CREATE UNIQUE INDEX CONCURRENTLY (NO TRANSACTION file), then ADD CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX)"},
	{RuleValidateSameTx, Error, Lock,
		"VALIDATE CONSTRAINT in the same transaction as its ADD ... NOT VALID keeps the ADD's strong lock for the whole validation scan",
		"validate in a later file (or a NO TRANSACTION file), so the scan runs under SHARE UPDATE EXCLUSIVE only"},
	{RuleReindex, Error, Lock,
		"REINDEX without CONCURRENTLY blocks writes to the table, and reads that would use the index, for the whole rebuild",
		"REINDEX ... CONCURRENTLY (PostgreSQL 12+), alone in a NO TRANSACTION file"},
	{RuleVacuumFull, Error, Lock,
		"VACUUM FULL rewrites the table under ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite",
		"plain VACUUM (no rewrite), or an online repack tool (pg_repack, pg_squeeze) outside the migration"},
	{RuleCluster, Error, Lock,
		"CLUSTER rewrites the table under ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite",
		"an online repack tool (pg_repack with --order-by) outside the migration"},
	{RuleLockTable, Warning, Lock,
		"LOCK TABLE takes an explicit lock (ACCESS EXCLUSIVE by default) held to the end of the transaction",
		"drop the explicit lock and rely on the statements' own, shorter locks; if it is needed, keep the transaction short and name the weakest mode"},
	{RuleDDLWithDML, Warning, Lock,
		"DDL and an UPDATE/DELETE on existing tables in one transaction: the DDL's lock is held until the data change finishes",
		"move the data change to its own file (NO TRANSACTION, in batches), after the schema change"},
	{RuleDMLWithoutWhere, Warning, Lock,
		"UPDATE or DELETE without WHERE on an existing table touches every row in one transaction: row locks on all of them, WAL and bloat",
		"batch by key range (WHERE id BETWEEN ...) in a NO TRANSACTION file or a job; add a WHERE clause if the whole table was not meant"},
	{RuleDropColumn, Error, Rolling,
		"DROP COLUMN of a column that existed before this release: pods of the previous release still read or write it and fail during the rollout",
		"stop using the column in one release, drop it in the next (then suppress with a reason: -- shiplock:ignore drop-column <why>)"},
	{RuleRenameColumn, Error, Rolling,
		"RENAME COLUMN: pods of the previous release still use the old name and fail during the rollout",
		"add the new column, write both and backfill, switch reads, drop the old column in a later release"},
	{RuleRenameTable, Error, Rolling,
		"RENAME TABLE: pods of the previous release still use the old name and fail during the rollout",
		"create the new name as a view of the old table (or the reverse) for one release, then rename"},
	{RuleDropTable, Error, Rolling,
		"DROP TABLE of a table that existed before this release: pods of the previous release may still use it",
		"stop using the table in one release, drop it in the next (then suppress with a reason)"},
	{RuleNarrowType, Error, Rolling,
		"narrowing a column's type: values that pods of the previous release still write may no longer fit",
		"widen only; to narrow, add a new column, migrate the application, then drop the old column"},
	{RuleAddNotNull, Error, Rolling,
		"ADD COLUMN NOT NULL without a default fails on a table with rows, and INSERTs of the previous release (which omit the column) would fail",
		"add the column with a DEFAULT, or nullable, and SET NOT NULL once every writer fills it"},
	{RuleNotxIdempotent, Warning, Hygiene,
		"a NO TRANSACTION file whose statements before the last are not idempotent: after a failure half-way, running the file again (as goose does) fails on what already happened",
		"IF NOT EXISTS / IF EXISTS on every statement, or one statement per NO TRANSACTION file"},
	{RuleDownMissing, Info, Hygiene,
		"the file has no Down statements: down or redo records the version as reverted without changing anything",
		"write the Down section that reverts the Up, or say in a comment why it cannot be reverted and suppress"},
	{RuleDownNotInverse, Warning, Hygiene,
		"the Down section does not drop what the Up section creates: down followed by up fails with \"already exists\"",
		"drop in Down every table, column and index the Up creates (DROP ... IF EXISTS)"},
	{RuleBadIgnore, Warning, Hygiene,
		"a -- shiplock:ignore comment without a reason or with an unknown rule: it suppresses nothing",
		"-- shiplock:ignore RULE the reason it is safe here"},
}

var ruleByID = func() map[string]*Rule {
	m := make(map[string]*Rule, len(rules))
	for i := range rules {
		m[rules[i].ID] = &rules[i]
	}
	return m
}()

// Rules returns every rule, in documentation order.
func Rules() []Rule { return append([]Rule(nil), rules...) }

// Lookup returns the rule with that id.
func Lookup(id string) (Rule, bool) {
	r, ok := ruleByID[id]
	if !ok {
		return Rule{}, false
	}
	return *r, true
}
