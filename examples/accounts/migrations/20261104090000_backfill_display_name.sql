-- +goose Up
-- Add, backfill, then constrain: existing rows get the local part of their
-- email as display name.
ALTER TABLE accounts ADD COLUMN display_name text;
UPDATE accounts SET display_name = split_part(email, '@', 1) WHERE display_name IS NULL;
ALTER TABLE accounts ALTER COLUMN display_name SET DEFAULT '';
ALTER TABLE accounts ALTER COLUMN display_name SET NOT NULL;

-- +goose Down
ALTER TABLE accounts DROP COLUMN display_name;
