-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY a_idx ON a (x);
-- +goose Down
-- +goose NO TRANSACTION
DROP INDEX CONCURRENTLY a_idx;
