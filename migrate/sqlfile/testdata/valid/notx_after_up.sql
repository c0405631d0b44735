-- +goose Up
-- +goose NO TRANSACTION
CREATE INDEX CONCURRENTLY users_created_idx ON users (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY users_created_idx;
