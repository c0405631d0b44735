-- +goose Up
CREATE TABLE t (id int);

-- +goose Down
