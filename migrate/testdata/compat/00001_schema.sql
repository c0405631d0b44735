-- +goose Up
CREATE SCHEMA app;
-- Later migrations rely on this carrying over, as they do under goose.
SET search_path = app, public;

-- +goose Down
DROP SCHEMA app CASCADE;
