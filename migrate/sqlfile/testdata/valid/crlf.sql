-- +goose Up
-- Windows line endings: "\r\n" is read as "\n".
CREATE TABLE t (
    id int
);

-- +goose StatementBegin
DO $$ BEGIN
    PERFORM 1;
END $$;
-- +goose StatementEnd
-- +goose Down
DROP TABLE t;