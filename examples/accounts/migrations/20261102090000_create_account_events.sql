-- +goose Up
CREATE TABLE account_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Listing serves open accounts, newest first: index only those.
CREATE INDEX accounts_open_created_idx ON accounts (created_at DESC) WHERE status = 'open';

-- +goose Down
DROP INDEX accounts_open_created_idx;
DROP TABLE account_events;
