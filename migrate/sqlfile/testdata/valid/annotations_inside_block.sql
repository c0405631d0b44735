-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$
    SELECT 1;
-- +goose NO TRANSACTION
$$ LANGUAGE sql;
-- +goose StatementEnd
