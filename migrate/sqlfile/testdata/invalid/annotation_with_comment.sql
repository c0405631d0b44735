-- +goose Up -- create the table
CREATE TABLE t (id int);
