-- +goose Up
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX accounts_email_lower_key ON accounts (lower(email));

-- +goose Down
DROP TABLE accounts;
