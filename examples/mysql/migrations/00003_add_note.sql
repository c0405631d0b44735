-- +goose Up
ALTER TABLE orders ADD COLUMN note VARCHAR(200) NULL;
UPDATE order_statuses SET label = 'Shipped to customer' WHERE code = 'shipped';

-- +goose Down
UPDATE order_statuses SET label = 'Shipped' WHERE code = 'shipped';
ALTER TABLE orders DROP COLUMN note;
