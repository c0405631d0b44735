-- +goose Up
-- Release v2: accounts may carry a phone number. Nullable, so v1 pods that
-- still serve during the rollout keep working.
ALTER TABLE accounts ADD COLUMN phone text
    CHECK (phone ~ '^\+[0-9]{6,15}$');

-- +goose Down
ALTER TABLE accounts DROP COLUMN phone;
