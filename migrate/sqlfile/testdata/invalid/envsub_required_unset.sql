-- +goose Up
-- +goose ENVSUB ON
CREATE SCHEMA ${SQLFILE_UNSET?set SQLFILE_UNSET to the schema name};
