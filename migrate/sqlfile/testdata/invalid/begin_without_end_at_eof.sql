-- +goose Up
SELECT 1;
-- +goose Down
-- +goose StatementBegin
DROP FUNCTION f();
