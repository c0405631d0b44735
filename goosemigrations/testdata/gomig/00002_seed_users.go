package gomig

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

func init() { goose.AddMigrationContext(upSeedUsers, downSeedUsers) }

// upSeedUsers runs in goose's transaction: a failure after the first
// insert leaves nothing.
func upSeedUsers(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO users (id, name) VALUES (1, 'ada')"); err != nil {
		return err
	}
	if err := failAt(2); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO users (id, name) VALUES (2, 'grace')")
	return err
}

func downSeedUsers(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id IN (1, 2)")
	return err
}
