-- +goose Up
INSERT INTO accounts (email, display_name) VALUES ('admin@example.com', 'Admin');

-- +goose Down
DELETE FROM accounts WHERE email = 'admin@example.com';
