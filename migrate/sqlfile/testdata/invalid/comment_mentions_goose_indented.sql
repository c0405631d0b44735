-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS void AS $$
BEGIN
    -- see the +goose docs
END $$ LANGUAGE plpgsql;
-- +goose StatementEnd
