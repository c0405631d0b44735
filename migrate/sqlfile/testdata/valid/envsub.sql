-- +goose Up
-- Without ENVSUB ON, ${...} is left untouched.
INSERT INTO templates (body) VALUES ('Hello ${NAME}, $SQLFILE_SCHEMA');
-- +goose ENVSUB ON
CREATE SCHEMA IF NOT EXISTS ${SQLFILE_SCHEMA};
GRANT USAGE ON SCHEMA $SQLFILE_SCHEMA TO ${SQLFILE_OWNER};
SELECT '${SQLFILE_UNSET:-fallback}', '${SQLFILE_EMPTY:-empty-or-unset}', '${SQLFILE_EMPTY-set}', '${SQLFILE_UNSET-unset}';
SELECT '[$SQLFILE_UNSET]', 'cost: $$5', 'escaped: \$SQLFILE_SCHEMA', '${SQLFILE_SCHEMA:1:2}';
-- A value ending in ";" ends the statement: termination is checked after expansion.
SELECT $SQLFILE_SEMI
SELECT 'next';
-- +goose ENVSUB OFF
INSERT INTO templates (body) VALUES ('Dear ${NAME:-customer}');

-- +goose Down
DELETE FROM templates WHERE body LIKE '%${NAME%';
