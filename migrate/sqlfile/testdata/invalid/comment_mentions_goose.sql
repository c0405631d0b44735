-- +goose Up
-- Written for +goose v3.
SELECT 1;
