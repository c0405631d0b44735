-- Comments and blank lines before Up are ignored.

-- +goose Up
CREATE TABLE users (
    id    bigint PRIMARY KEY,
    email text NOT NULL UNIQUE
);

CREATE INDEX users_email_idx ON users (email);

-- +goose Down
DROP TABLE users;
