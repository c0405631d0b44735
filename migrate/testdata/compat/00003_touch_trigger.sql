-- +goose Up
ALTER TABLE accounts ADD COLUMN updated_at timestamptz;

-- +goose StatementBegin
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_touch ON accounts;
DROP FUNCTION touch_updated_at();
ALTER TABLE accounts DROP COLUMN updated_at;
