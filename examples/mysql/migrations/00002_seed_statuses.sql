-- +goose Up
-- Data only: one real transaction, with its version row.
INSERT INTO order_statuses (code, label) VALUES ('new', 'New');
INSERT INTO order_statuses (code, label) VALUES ('paid', 'Paid');
INSERT INTO order_statuses (code, label) VALUES ('shipped', 'Shipped');

-- +goose Down
DELETE FROM order_statuses WHERE code IN ('new', 'paid', 'shipped');
