-- +goose NO TRANSACTION
-- +goose Up
-- Built without blocking writes to account_events; it cannot run inside a
-- transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS account_events_account_created_idx
    ON account_events (account_id, created_at DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS account_events_account_created_idx;
