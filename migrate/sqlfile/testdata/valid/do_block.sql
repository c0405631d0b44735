-- +goose Up
-- +goose StatementBegin
-- Leading comments inside a block are dropped, like any comment before a statement.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reporting') THEN
        CREATE ROLE reporting;
    END IF;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
LOCK TABLE users IN SHARE MODE;
LOCK TABLE orders IN SHARE MODE;
UPDATE orders SET owner = 'reporting';
-- +goose StatementEnd

-- +goose Down
DROP ROLE reporting;
