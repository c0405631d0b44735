-- +goose Up
SELECT 1;-- the word "1;--" does not end in ";"
