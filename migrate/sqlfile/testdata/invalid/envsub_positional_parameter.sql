-- +goose Up
-- +goose ENVSUB ON
-- +goose StatementBegin
CREATE FUNCTION add(int, int) RETURNS int AS $$
    SELECT $1 + $2;
$$ LANGUAGE sql;
-- +goose StatementEnd
