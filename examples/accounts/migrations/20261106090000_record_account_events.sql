-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION accounts_record_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO account_events (account_id, kind, detail)
        VALUES (NEW.id, 'opened', jsonb_build_object('email', NEW.email));
    ELSIF NEW.email IS DISTINCT FROM OLD.email THEN
        INSERT INTO account_events (account_id, kind, detail)
        VALUES (NEW.id, 'email_changed', jsonb_build_object('from', OLD.email, 'to', NEW.email));
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO account_events (account_id, kind) VALUES (NEW.id, NEW.status);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER accounts_record_event AFTER INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_record_event();
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_record_event ON accounts;
DROP FUNCTION accounts_record_event();
