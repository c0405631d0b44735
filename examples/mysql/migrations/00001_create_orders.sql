-- +goose Up
-- DDL: MySQL commits around it, so shiplock runs this file statement by
-- statement and records its progress after each one.
CREATE TABLE order_statuses (
    code VARCHAR(20) PRIMARY KEY,
    label VARCHAR(100) NOT NULL
);
CREATE TABLE orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT orders_status_fk FOREIGN KEY (status) REFERENCES order_statuses (code)
);
CREATE INDEX orders_email_idx ON orders (email);

-- +goose Down
DROP TABLE orders;
DROP TABLE order_statuses;
