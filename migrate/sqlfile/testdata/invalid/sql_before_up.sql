-- a comment is fine before Up

CREATE TABLE t (id int);
-- +goose Up
SELECT 1;
