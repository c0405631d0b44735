-- +goose Up
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL, -- checked below; a ; inside a comment
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_lower ON accounts (lower(email));
CREATE INDEX accounts_open ON accounts (created_at) WHERE status = 'open';

CREATE TABLE entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount_cents bigint NOT NULL
);

-- +goose Down
DROP TABLE entries;
DROP TABLE accounts;
