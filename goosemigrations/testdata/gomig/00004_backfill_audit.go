package gomig

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

func init() { goose.AddMigrationNoTxContext(upBackfillAudit, downBackfillAudit) }

// upBackfillAudit runs outside a transaction on the *sql.DB: a failure
// after the first insert leaves that row.
func upBackfillAudit(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "INSERT INTO audit (note) VALUES ('backfill 1')"); err != nil {
		return err
	}
	if err := failAt(4); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, "INSERT INTO audit (note) VALUES ('backfill 2')")
	return err
}

func downBackfillAudit(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "DELETE FROM audit WHERE note LIKE 'backfill %'")
	return err
}
