-- +goose Up
ALTER TABLE accounts ADD COLUMN display_name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accounts DROP COLUMN display_name;
