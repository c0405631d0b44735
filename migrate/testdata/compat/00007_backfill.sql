-- +goose Up
ALTER TABLE accounts ADD COLUMN display_name text;
UPDATE accounts SET display_name = split_part(email, '@', 1);
ALTER TABLE accounts ALTER COLUMN display_name SET NOT NULL;

-- +goose Down
ALTER TABLE accounts DROP COLUMN display_name;
