-- +goose Up
-- This migration only documents a manual step; Up runs nothing.
-- SELECT 'not executed';

-- +goose Down
SELECT 'down';
