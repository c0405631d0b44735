-- +goose Up
CREATE TABLE audit_log (id bigserial PRIMARY KEY);
