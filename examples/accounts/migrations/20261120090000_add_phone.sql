-- +goose Up
-- Release v2: accounts may carry a phone number. Nullable, so v1 pods that
-- still serve during the rollout keep working. The format check is added
-- NOT VALID: written inline in ADD COLUMN it would read every row of
-- accounts under ACCESS EXCLUSIVE (shiplock lint: constraint-not-valid);
-- NOT VALID checks new writes only, and the column is NULL everywhere, so
-- there is nothing old to validate.
ALTER TABLE accounts ADD COLUMN phone text;
ALTER TABLE accounts ADD CONSTRAINT accounts_phone_format
    CHECK (phone ~ '^\+[0-9]{6,15}$') NOT VALID;

-- +goose Down
ALTER TABLE accounts DROP COLUMN phone;
