-- +goose Up
-- goose knows nothing of SQL quoting: a line ending in ";" ends the
-- statement even inside a string literal, and the next line starts another.
INSERT INTO notes (body) VALUES ('first line;
second line');
-- Inside StatementBegin/End the same text stays one statement.
-- +goose StatementBegin
INSERT INTO notes (body) VALUES ('first line;
second line');
-- +goose StatementEnd
