-- +goose Up
-- goose does not split a line: both statements are sent as one string.
SELECT 1; SELECT 2;
INSERT INTO t VALUES (1);INSERT INTO t VALUES (2);
-- A statement spanning lines ends at the first line ending in ";".
INSERT INTO t
VALUES (3)
;
