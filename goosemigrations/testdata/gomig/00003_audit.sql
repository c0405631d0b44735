-- +goose Up
CREATE TABLE audit (note text NOT NULL);

-- +goose Down
DROP TABLE audit;
