-- +goose Up
-- +goose StatementBegin
CREATE PROCEDURE touch_users()
BEGIN
    UPDATE users SET touched = 1;
    UPDATE users SET touched = 2;
END
-- +goose StatementEnd

-- +goose Down
DROP PROCEDURE touch_users;
