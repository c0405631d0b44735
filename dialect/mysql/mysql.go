// Package mysql is the MySQL and MariaDB dialect, on the go-sql-driver
// driver (github.com/go-sql-driver/mysql). It is written and tested against
// MariaDB 10.11; where MySQL 8 differs, the doc comment says so.
//
// # Connecting
//
// ParseURL reads mysql://user:password@host:port/database?param=value (user
// and password percent-decoded, port 3306 by default, parameters the
// driver's own: an unknown one is an error); ParseDSN reads the driver's
// form user:password@tcp(host:port)/database?param=value. Open makes a
// handle from either, forcing what shiplock relies on: parseTime, one
// statement per query (multiStatements off), server-side arguments
// (interpolateParams off) and a connect timeout.
//
// # Bookkeeping
//
// goose_db_version is created exactly as goose v3 creates it on MySQL
// (bigint unsigned AUTO_INCREMENT id, tstamp datetime DEFAULT
// CURRENT_TIMESTAMP, the version-0 row), named by Dialect.Table:
// NAME or SCHEMA.NAME, each part taken as written (MySQL table names are
// case-sensitive on Linux), quoted with backticks. shiplock's own table is
// shiplock_versions beside it (NAME_shiplock beside a table NAME). Times
// are written by the server in the session's time zone, as goose's tstamp
// is, and read in the driver's loc (UTC unless the DSN says otherwise): the
// two must agree for the times shown to be right.
//
// # Lock
//
// The migration lock is GET_LOCK(name, 0) on the runner's pinned
// connection, polled by the engine as on PostgreSQL. GET_LOCK names are
// server-wide, so the name is per database: "shiplock:" followed by the
// version table's schema (DATABASE() when the table is unqualified), or by
// the MD5 of the schema name when that would pass MySQL's 64 characters
// (MariaDB has no such limit). MySQL compares lock names without regard to
// case (MariaDB exactly), so there databases "App" and "app" share one
// lock: they exclude each other, nothing worse. RELEASE_LOCK's answer is
// checked. goose v3.30.0's MySQL table locker (lock.NewMySQLTableLocker:
// a goose_lock row with a 30 s lease) is honoured one way: TryLock refuses
// while a live row of it is held. goose's locker does not look at
// GET_LOCK, so a goose runner started while shiplock holds the lock is not
// held back by it; as on PostgreSQL, that needs shiplock to take goose's
// lease itself, which this dialect does not offer yet. GET_LOCK is not
// replicated: on Galera or Group Replication with writes going to several
// nodes it excludes only the runners on one node. A holder whose host
// vanishes (no FIN, no RST) keeps the lock until the server drops its
// session: wait_timeout (8 h by default) or the server's global TCP
// keepalive (MariaDB's tcp_keepalive_time); unlike PostgreSQL, no session
// setting shortens that.
//
// # Transactions
//
// MySQL commits around DDL and many administrative statements
// (ImplicitCommit lists them); such a migration cannot be rolled back and
// runs statement by statement. The bounds of Settings are session
// variables set before START TRANSACTION and restored after:
// lock_wait_timeout and innodb_lock_wait_timeout for LockTimeout, and
// max_statement_time (MariaDB) or max_execution_time (MySQL, which bounds
// SELECT statements only) for StatementTimeout.
//
// # Watching and stopping
//
// Dialect is also a dialect.Canceller (KILL QUERY on the connection id)
// and a dialect.Observer (the processlist, and the same database's older
// open transactions while a statement waits for a lock).
package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiplock/shiplock/dialect"
)

// Dialect is the MySQL/MariaDB dialect. The zero value is ready to use,
// with goose's default table in the connection's database. It holds no
// connection state and is safe for concurrent use.
type Dialect struct {
	// Table is goose's version table (goose's -table): NAME in the
	// connection's database, or SCHEMA.NAME. shiplock's own table is
	// Table.Records(), in the same schema, and the lock is per schema.
	Table dialect.Table
}

func (Dialect) Name() string { return "mysql" }

func (d Dialect) VersionTable() dialect.Table { return d.Table }

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// lit is a string literal that reads the same under any sql_mode
// (NO_BACKSLASH_ESCAPES, ANSI_QUOTES): quotes doubled, and text holding a
// backslash or a control character written in hex.
func lit(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return "_utf8mb4 X'" + hex.EncodeToString([]byte(s)) + "'"
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// schemaExpr is the SQL for the version table's schema: the qualifier as a
// literal, else DATABASE() (NULL when the connection selected none).
func (d Dialect) schemaExpr() string {
	if s := d.Table.Schema().Text; s != "" {
		return lit(s)
	}
	return "DATABASE()"
}

// table qualifies a table name as the version table is qualified.
func (d Dialect) table(name string) string {
	if s := d.Table.Schema().Text; s != "" {
		return quoteIdent(s) + "." + quoteIdent(name)
	}
	return quoteIdent(name)
}

// sql fills a query's placeholders: {v} the version table, {r} shiplock's
// table, {s} the schema expression, {lock} the lock name expression,
// {alive} whether a marker's runner holds the lock now.
func (d Dialect) sql(q string) string {
	// In this order: an expression may hold the later placeholders.
	for _, r := range [...][2]string{
		{"{alive}", aliveExpr},
		{"{lock}", lockExpr},
		{"{s}", d.schemaExpr()},
		{"{v}", d.table(d.Table.Name().Text)},
		{"{r}", d.table(d.Table.Records().Text)},
	} {
		q = strings.ReplaceAll(q, r[0], r[1])
	}
	return q
}

const (
	// lockExpr is the lock's name, within GET_LOCK's 64 characters.
	lockExpr = `IF(CHAR_LENGTH({s}) <= 55, CONCAT('shiplock:', {s}), CONCAT('shiplock:', MD5({s})))`
	// aliveExpr: the marker's connection holds the lock now, and is not
	// the reader's own.
	aliveExpr = `COALESCE(state <> 'applied' AND pid <> 0 AND pid <> CONNECTION_ID() AND IS_USED_LOCK({lock}) = pid, 0)`

	qTablesExist = `SELECT
		EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = {s} AND table_name = %s),
		EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = {s} AND table_name = %s)`
	// goose v3.30.0, internal/dialects/mysql.go, character for character.
	qCreateVersionTable = `CREATE TABLE %s (
		id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp datetime NULL default CURRENT_TIMESTAMP,
		PRIMARY KEY(id)
	)`
	qInsertVersionZero = `INSERT INTO {v} (version_id, is_applied) VALUES (0, true)`
	qListVersions      = `SELECT id, version_id, is_applied, tstamp FROM {v} ORDER BY id DESC`
	qOtherVersionTable = `SELECT table_name FROM information_schema.columns
		WHERE table_schema = {s} AND table_name <> %s AND column_name IN ('version_id', 'is_applied', 'tstamp')
		GROUP BY table_name HAVING COUNT(*) = 3 ORDER BY table_name LIMIT 1`
	qCreateRecordTable = `CREATE TABLE IF NOT EXISTS {r} (
		version_id bigint NOT NULL PRIMARY KEY,
		source text NOT NULL,
		checksum text NOT NULL,
		state varchar(16) NOT NULL,
		` + "`statement`" + ` int NOT NULL DEFAULT 0,
		updated_at datetime(6) NOT NULL,
		in_flight boolean NOT NULL DEFAULT false,
		total int NOT NULL DEFAULT 0,
		pid bigint NOT NULL DEFAULT 0,
		started_at datetime(6) NULL
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
	recordColumns = "version_id, source, checksum, state, `statement`, updated_at, in_flight, total, pid, started_at"
	qListRecords  = `SELECT ` + recordColumns + `, {alive} FROM {r}`
	qListAll      = `SELECT 1, id, version_id, is_applied, tstamp, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM {v}
		UNION ALL
		SELECT 0, 0, version_id, NULL, NULL, updated_at, source, checksum, state, ` + "`statement`" + `, in_flight, total, pid, started_at, {alive} FROM {r}
		ORDER BY 1 DESC, 2 DESC`
	// A marker carries the writing connection's id; its start time stays
	// while the same connection goes on with the same migration.
	// started_at is assigned first: ON DUPLICATE KEY UPDATE assigns left
	// to right, and the later columns' old values decide.
	qPutRecord = `INSERT INTO {r} (` + recordColumns + `) VALUES (%d, %s, %s, %s, %d, NOW(6), %t, %d, %s, %s)
		ON DUPLICATE KEY UPDATE
		started_at = IF(state = VALUES(state) AND pid = VALUES(pid), started_at, VALUES(started_at)),
		source = VALUES(source), checksum = VALUES(checksum), state = VALUES(state), ` + "`statement` = VALUES(`statement`)" + `,
		updated_at = VALUES(updated_at), in_flight = VALUES(in_flight), total = VALUES(total), pid = VALUES(pid)`
	qDeleteRecord = `DELETE FROM {r} WHERE version_id = %d`
)

var (
	_ dialect.Dialect = Dialect{}
	_ dialect.Store   = Dialect{}
)

func (d Dialect) TablesExist(ctx context.Context, q dialect.Querier) (versions, records bool, err error) {
	query := fmt.Sprintf(d.sql(qTablesExist), lit(d.Table.Name().Text), lit(d.Table.Records().Text))
	err = q.QueryRowContext(ctx, query).Scan(&versions, &records)
	return versions, records, err
}

// OtherVersionTable looks in the version table's schema.
func (d Dialect) OtherVersionTable(ctx context.Context, q dialect.Querier) (string, error) {
	var name string
	err := q.QueryRowContext(ctx, fmt.Sprintf(d.sql(qOtherVersionTable), lit(d.Table.Name().Text))).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// CreateVersionTable runs goose's CREATE TABLE and inserts the version-0
// row. MySQL commits around the CREATE: in a transaction, only the insert
// is in it.
func (d Dialect) CreateVersionTable(ctx context.Context, q dialect.Querier) error {
	if _, err := q.ExecContext(ctx, fmt.Sprintf(qCreateVersionTable, d.table(d.Table.Name().Text))); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, d.sql(qInsertVersionZero))
	return err
}

func (d Dialect) ListVersions(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, error) {
	return dialect.QueryVersions(ctx, q, d.sql(qListVersions))
}

// EnsureRecordTable creates shiplock's table in the version table's schema
// when missing; an existing table is left alone (a CREATE TABLE IF NOT
// EXISTS would still commit the caller's transaction).
func (d Dialect) EnsureRecordTable(ctx context.Context, q dialect.Querier) error {
	if _, records, err := d.TablesExist(ctx, q); err != nil || records {
		return err
	}
	_, err := q.ExecContext(ctx, d.sql(qCreateRecordTable))
	return err
}

func (d Dialect) ListRecords(ctx context.Context, q dialect.Querier) ([]dialect.Record, error) {
	return dialect.QueryRecords(ctx, q, d.sql(qListRecords))
}

func (d Dialect) ListAll(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, []dialect.Record, error) {
	return dialect.QueryAll(ctx, q, d.sql(qListAll))
}

// PutRecord writes literal values: one round trip, where arguments would
// cost a server-side prepare.
func (d Dialect) PutRecord(ctx context.Context, q dialect.Querier, r dialect.Record) error {
	pid, started := "CONNECTION_ID()", "NOW(6)"
	inFlight, total := r.InFlight, r.Total
	if r.State == dialect.StateApplied {
		pid, started, inFlight, total = "0", "NULL", false, 0
	}
	_, err := q.ExecContext(ctx, fmt.Sprintf(d.sql(qPutRecord),
		r.Version, lit(r.Source), lit(r.Checksum), lit(r.State), r.Statement, inFlight, total, pid, started))
	return err
}

func (d Dialect) DeleteRecord(ctx context.Context, q dialect.Querier, version int64) error {
	_, err := q.ExecContext(ctx, fmt.Sprintf(d.sql(qDeleteRecord), version))
	return err
}

// AppliedStatements: goose_db_version rows in the order of rs (one
// multi-row INSERT assigns ids in row order), then the records of those
// with a checksum, replacing any progress marker.
func (d Dialect) AppliedStatements(rs ...dialect.Record) []string {
	if len(rs) == 0 {
		return nil
	}
	var versions, records []string
	for _, r := range rs {
		versions = append(versions, fmt.Sprintf("(%d, true)", r.Version))
		if r.Checksum != "" {
			records = append(records, fmt.Sprintf("(%d, %s, %s, 'applied', 0, NOW(6), false, 0, 0, NULL)", r.Version, lit(r.Source), lit(r.Checksum)))
		}
	}
	out := []string{d.sql("INSERT INTO {v} (version_id, is_applied) VALUES ") + strings.Join(versions, ", ")}
	if len(records) > 0 {
		out = append(out, d.sql("INSERT INTO {r} ("+recordColumns+") VALUES ")+strings.Join(records, ", ")+`
		ON DUPLICATE KEY UPDATE source = VALUES(source), checksum = VALUES(checksum), state = 'applied', `+"`statement`"+` = 0,
			updated_at = VALUES(updated_at), in_flight = false, total = 0, pid = 0, started_at = NULL`)
	}
	return out
}

// RevertedStatements deletes the versions' rows (all of them, as goose
// does) and records.
func (d Dialect) RevertedStatements(versions ...int64) []string {
	if len(versions) == 0 {
		return nil
	}
	list := make([]string, len(versions))
	for i, v := range versions {
		list[i] = strconv.FormatInt(v, 10)
	}
	in := " WHERE version_id IN (" + strings.Join(list, ", ") + ")"
	return []string{d.sql("DELETE FROM {v}") + in, d.sql("DELETE FROM {r}") + in}
}
