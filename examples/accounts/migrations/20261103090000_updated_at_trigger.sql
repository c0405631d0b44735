-- +goose Up
ALTER TABLE accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- +goose StatementBegin
CREATE FUNCTION accounts_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER accounts_touch_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_touch_updated_at();

-- +goose Down
DROP TRIGGER accounts_touch_updated_at ON accounts;
DROP FUNCTION accounts_touch_updated_at();
ALTER TABLE accounts DROP COLUMN updated_at;
