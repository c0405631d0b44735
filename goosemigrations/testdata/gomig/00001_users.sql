-- +goose Up
CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);

-- +goose Down
DROP TABLE users;
