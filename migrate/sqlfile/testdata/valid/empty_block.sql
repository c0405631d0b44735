-- +goose Up
-- goose quirk: after a StatementBegin block that holds only comments, the
-- next SQL line is swallowed and an empty statement is sent instead.
-- +goose StatementBegin
-- nothing here
-- +goose StatementEnd

SELECT 'swallowed';
SELECT 'kept';
-- A block followed directly by another block or by Down leaves no trace.
-- +goose StatementBegin
-- +goose StatementEnd
-- +goose StatementBegin
SELECT 'block';
-- +goose StatementEnd
-- +goose StatementBegin
-- +goose StatementEnd

-- +goose Down
