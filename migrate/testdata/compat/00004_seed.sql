-- +goose Up
-- Without ENVSUB ON, ${...} is data.
INSERT INTO accounts (email) VALUES ('${ADMIN_EMAIL}');
-- +goose StatementBegin
DO $$
BEGIN
    INSERT INTO entries (account_id, amount_cents)
    SELECT id, 100 FROM accounts;
END
$$;
-- +goose StatementEnd

-- +goose Down
DELETE FROM accounts;
