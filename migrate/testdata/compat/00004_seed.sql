-- +goose Up
-- Without ENVSUB ON, ${...} is data.
INSERT INTO accounts (email) VALUES ('${ADMIN_EMAIL}');
DO $$
BEGIN
    INSERT INTO entries (account_id, amount_cents)
    SELECT id, 100 FROM accounts;
END
$$;

-- +goose Down
DELETE FROM accounts;
