-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS entries_account ON entries (account_id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS entries_account;
