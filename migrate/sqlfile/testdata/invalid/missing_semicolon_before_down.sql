-- +goose Up
SELECT 1;

ALTER TABLE t
    ADD COLUMN c int

-- +goose Down
ALTER TABLE t DROP COLUMN c;
