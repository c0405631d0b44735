-- +goose Up
-- goose quirk: an unterminated statement before StatementBegin becomes the
-- start of the block's statement.
ALTER TABLE t
-- +goose StatementBegin
ADD COLUMN a int;
ALTER TABLE t ADD COLUMN b int;
-- +goose StatementEnd
