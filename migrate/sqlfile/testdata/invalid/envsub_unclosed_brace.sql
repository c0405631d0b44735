-- +goose Up
-- +goose ENVSUB ON
SELECT ${SQLFILE_SCHEMA;
