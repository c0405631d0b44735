-- +goose Up
-- +goose
SELECT 1;
