-- The labelled set: each case is the Up section of one new migration file
-- (in a transaction unless "notx"; "-- before:" lines form an applied file
-- that precedes it; a case holding "-- +goose" lines is a whole file).
-- "hazard RULE": RULE must be reported. "safe RULE": a safe rewrite of what
-- RULE guards; nothing at all may be reported. Tables no case creates exist.

-- case hazard create-index-lock
CREATE INDEX users_email_idx ON users (email);
-- case hazard create-index-lock
CREATE UNIQUE INDEX IF NOT EXISTS orders_ref_key ON public.orders USING btree (ref);
-- case hazard create-index-lock
-- before: CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz);
CREATE INDEX ON events (at) WHERE at IS NOT NULL;
-- case hazard create-index-lock
create index "Big_Idx" on "Accounts" (lower(email));
-- case safe create-index-lock notx
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);
-- case safe create-index-lock
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint NOT NULL);
CREATE INDEX invoices_customer_idx ON invoices (customer_id);
-- case safe create-index-lock
-- a table created by an earlier file of the same release is new too
CREATE TABLE IF NOT EXISTS audit_log (id bigserial PRIMARY KEY, body jsonb);
CREATE INDEX audit_log_body_idx ON audit_log USING gin (body);
-- case safe create-index-lock
SELECT 'CREATE INDEX x ON users (email);' AS not_a_statement;
-- case safe create-index-lock
/* CREATE INDEX x ON users (email); /* nested */ still a comment */
SELECT 1;

-- case hazard concurrently-in-tx
CREATE INDEX CONCURRENTLY users_name_idx ON users (name);
-- case hazard concurrently-in-tx notx
-- +goose StatementBegin
CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON users (a);
CREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON users (b);
-- +goose StatementEnd
-- case hazard concurrently-in-tx
DROP INDEX CONCURRENTLY IF EXISTS users_old_idx;
-- case hazard concurrently-in-tx notx
BEGIN;
REINDEX INDEX CONCURRENTLY users_email_idx;
COMMIT;
-- case safe concurrently-in-tx notx
DROP INDEX CONCURRENTLY IF EXISTS users_old_idx;
-- case safe concurrently-in-tx notx
REINDEX INDEX CONCURRENTLY users_email_idx;
-- case safe concurrently-in-tx notx
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_handle_key ON users (handle);

-- case hazard volatile-default
ALTER TABLE users ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();
-- case hazard volatile-default
ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
-- case hazard volatile-default
ALTER TABLE orders ADD COLUMN seq bigserial;
-- case hazard volatile-default
ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS (qty * price) STORED;
-- case safe volatile-default
ALTER TABLE users ADD COLUMN seen_at timestamptz DEFAULT now();
-- case safe volatile-default
ALTER TABLE users ADD COLUMN tier text DEFAULT 'free';
-- case safe volatile-default
ALTER TABLE users ADD COLUMN note text DEFAULT 'random()';
-- case safe volatile-default
CREATE TABLE sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), started timestamptz DEFAULT clock_timestamp());
ALTER TABLE sessions ADD COLUMN nonce bigint DEFAULT (random() * 1000000)::bigint;

-- case hazard column-type-rewrite
ALTER TABLE users ALTER COLUMN id TYPE bigint;
-- case hazard column-type-rewrite
-- before: CREATE TABLE prices (id int PRIMARY KEY, amount integer);
ALTER TABLE prices ALTER COLUMN amount SET DATA TYPE numeric(12,2);
-- case hazard column-type-rewrite
-- before: CREATE TABLE logs (id int PRIMARY KEY, at timestamp);
ALTER TABLE logs ALTER COLUMN at TYPE timestamptz;
-- case hazard column-type-rewrite
-- before: CREATE TABLE notes (id int PRIMARY KEY, body varchar(200));
ALTER TABLE notes ALTER COLUMN body TYPE text USING trim(body);
-- case safe column-type-rewrite
-- before: CREATE TABLE notes (id int PRIMARY KEY, body varchar(200));
ALTER TABLE notes ALTER COLUMN body TYPE varchar(500);
-- case safe column-type-rewrite
-- before: CREATE TABLE notes (id int PRIMARY KEY, body character varying(200));
ALTER TABLE notes ALTER COLUMN body TYPE text;
-- case safe column-type-rewrite
-- before: CREATE TABLE amounts (id int PRIMARY KEY, v numeric(10,2));
ALTER TABLE amounts ALTER COLUMN v TYPE numeric(14,2);
-- case safe column-type-rewrite
CREATE TABLE drafts (id int PRIMARY KEY, body varchar(10));
ALTER TABLE drafts ALTER COLUMN body TYPE integer USING 0;

-- case hazard table-rewrite
ALTER TABLE events SET LOGGED;
-- case hazard table-rewrite
ALTER TABLE IF EXISTS public.orders SET TABLESPACE archive_hdd;
-- case hazard table-rewrite
ALTER TABLE sessions SET UNLOGGED, SET (fillfactor = 70);
-- case safe table-rewrite
CREATE UNLOGGED TABLE import_rows (id int, body text);
ALTER TABLE import_rows SET LOGGED;
-- case safe table-rewrite
ALTER TABLE orders SET (autovacuum_vacuum_scale_factor = 0.01);

-- case hazard set-not-null-scan
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
-- case hazard set-not-null-scan
-- the CHECK is still NOT VALID when SET NOT NULL runs
ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE users ALTER email SET NOT NULL;
-- case hazard set-not-null-scan
-- before: CREATE TABLE t1 (id int PRIMARY KEY, a text);
ALTER TABLE t1 ADD CONSTRAINT a_nn CHECK (b IS NOT NULL) NOT VALID;
ALTER TABLE t1 VALIDATE CONSTRAINT a_nn;
ALTER TABLE t1 ALTER COLUMN a SET NOT NULL;
-- case safe set-not-null-scan
-- before: CREATE TABLE t1 (id int PRIMARY KEY, a text);
-- before: ALTER TABLE t1 ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;
-- before: ALTER TABLE t1 VALIDATE CONSTRAINT a_nn;
ALTER TABLE t1 ALTER COLUMN a SET NOT NULL;
ALTER TABLE t1 DROP CONSTRAINT a_nn;
-- case safe set-not-null-scan notx
ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;
-- case safe set-not-null-scan
CREATE TABLE drafts2 (id int PRIMARY KEY, a text);
ALTER TABLE drafts2 ALTER COLUMN a SET NOT NULL;
-- case safe set-not-null-scan
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- case hazard constraint-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
-- case hazard constraint-not-valid
ALTER TABLE orders ADD CHECK (qty > 0);
-- case hazard constraint-not-valid
ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0), ADD CONSTRAINT price_pos CHECK (price >= 0) NOT VALID;
-- case safe constraint-not-valid
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
-- case safe constraint-not-valid
ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID;
-- case safe constraint-not-valid
-- before: ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT qty_pos;
-- case safe constraint-not-valid
CREATE TABLE lines (id int PRIMARY KEY, order_id int);
ALTER TABLE lines ADD CONSTRAINT lines_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);

-- case hazard constraint-not-valid
-- a CHECK written in ADD COLUMN scans every row, though the column is all NULL
ALTER TABLE accounts ADD COLUMN phone text
    CHECK (phone ~ '^\+[0-9]{6,15}$');
-- case hazard constraint-not-valid
ALTER TABLE orders ADD COLUMN user_id bigint DEFAULT 0 CONSTRAINT orders_user_fk REFERENCES users (id);
-- case safe constraint-not-valid
-- a REFERENCES on a new column without a default is valid at once, no scan
ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id) ON DELETE SET NULL;
-- case safe constraint-not-valid
ALTER TABLE accounts ADD COLUMN phone text;
ALTER TABLE accounts ADD CONSTRAINT accounts_phone_check CHECK (phone ~ '^\+[0-9]{6,15}$') NOT VALID;
-- case safe constraint-not-valid
CREATE TABLE carts (id int PRIMARY KEY);
ALTER TABLE carts ADD COLUMN qty int NOT NULL DEFAULT 1 CHECK (qty > 0);

-- case hazard unique-constraint-lock
ALTER TABLE users ADD COLUMN code text UNIQUE;
-- case hazard unique-constraint-lock
ALTER TABLE legacy ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT legacy_pkey PRIMARY KEY;
-- case hazard unique-constraint-lock
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email) USING INDEX TABLESPACE fast_ssd;
-- case safe unique-constraint-lock
CREATE TABLE coupons (id int PRIMARY KEY);
ALTER TABLE coupons ADD COLUMN code text UNIQUE;
-- case hazard unique-constraint-lock
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
-- case hazard unique-constraint-lock
ALTER TABLE legacy ADD PRIMARY KEY (id);
-- case hazard unique-constraint-lock
ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
-- case safe unique-constraint-lock
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;
-- case safe unique-constraint-lock
ALTER TABLE legacy ADD CONSTRAINT legacy_pkey PRIMARY KEY USING INDEX legacy_id_idx;
-- case safe unique-constraint-lock
CREATE TABLE tags (id int, name text);
ALTER TABLE tags ADD PRIMARY KEY (id);

-- case hazard validate-same-tx
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
-- case hazard validate-same-tx notx
BEGIN;
ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT qty_pos;
COMMIT;
-- case hazard validate-same-tx notx
-- +goose StatementBegin
ALTER TABLE orders ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT qty_pos;
-- +goose StatementEnd
-- case safe validate-same-tx
-- before: ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;

-- case hazard reindex-lock
REINDEX INDEX users_email_idx;
-- case hazard reindex-lock
REINDEX TABLE orders;
-- case hazard reindex-lock
REINDEX (VERBOSE) TABLE public.orders;
-- case safe reindex-lock notx
REINDEX TABLE CONCURRENTLY orders;
-- case safe reindex-lock notx
REINDEX (VERBOSE, CONCURRENTLY) INDEX users_email_idx;

-- case hazard vacuum-full notx
VACUUM FULL orders;
-- case hazard vacuum-full notx
VACUUM (FULL, ANALYZE) orders;
-- case safe vacuum-full notx
VACUUM (ANALYZE) orders;
-- case safe vacuum-full notx
VACUUM (FULL false) orders;

-- case hazard cluster
CLUSTER orders USING orders_pkey;
-- case hazard cluster
CLUSTER VERBOSE orders;
-- case safe cluster
ALTER TABLE orders CLUSTER ON orders_pkey;

-- case hazard lock-table
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
-- case hazard lock-table
LOCK orders;
-- case safe lock-table
SELECT pg_advisory_xact_lock(42);
-- case safe lock-table
COMMENT ON TABLE orders IS 'LOCK TABLE orders';

-- case hazard ddl-with-dml
ALTER TABLE orders ADD COLUMN status text;
UPDATE orders SET status = 'new' WHERE status IS NULL;
-- case hazard ddl-with-dml
DELETE FROM sessions WHERE expires < now();
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_old_check;
-- case hazard ddl-with-dml
WITH stale AS (SELECT id FROM carts WHERE updated < now() - interval '30 days')
DELETE FROM carts WHERE id IN (SELECT id FROM stale);
ALTER TABLE carts ADD CONSTRAINT carts_qty_pos CHECK (qty > 0) NOT VALID;
-- case safe ddl-with-dml notx
ALTER TABLE orders ADD COLUMN IF NOT EXISTS status text;
-- case safe ddl-with-dml notx
UPDATE orders SET status = 'new' WHERE id BETWEEN 1 AND 10000 AND status IS NULL;
-- case safe ddl-with-dml
CREATE TABLE statuses (code text PRIMARY KEY);
INSERT INTO statuses VALUES ('new'), ('paid');
UPDATE statuses SET code = upper(code);

-- case hazard dml-without-where
UPDATE users SET active = true;
-- case hazard dml-without-where
DELETE FROM audit_events;
-- case hazard dml-without-where
UPDATE ONLY public.users AS u SET score = (SELECT count(*) FROM orders o WHERE o.user_id = u.id);
-- case hazard dml-without-where
WITH gone AS (DELETE FROM users RETURNING *) SELECT count(*) FROM gone;
-- case hazard dml-without-where
WITH moved AS (DELETE FROM sessions RETURNING id, body)
INSERT INTO sessions_archive (id, body) SELECT id, body FROM moved;
-- case hazard dml-without-where
WITH a AS (SELECT 1), b AS MATERIALIZED (UPDATE users SET score = 0 RETURNING id) SELECT * FROM b;
-- case safe dml-without-where
WITH gone AS (DELETE FROM sessions WHERE expires < now() RETURNING id) SELECT count(*) FROM gone;
-- case safe dml-without-where
UPDATE users SET active = true WHERE last_login > now() - interval '1 year';
-- case safe dml-without-where
CREATE TABLE staging (id int);
DELETE FROM staging;
-- case safe dml-without-where
INSERT INTO settings (k, v) VALUES ('where', 'x');

-- case hazard drop-column
ALTER TABLE users DROP COLUMN legacy_flag;
-- case hazard drop-column
ALTER TABLE users DROP COLUMN IF EXISTS nickname, DROP COLUMN avatar;
-- case hazard drop-column
ALTER TABLE users DROP avatar;
-- case safe drop-column
-- shiplock:ignore drop-column no release since v41 reads it
ALTER TABLE users DROP COLUMN legacy_flag;
-- case safe drop-column
ALTER TABLE users ADD COLUMN tmp_flag boolean;
ALTER TABLE users DROP COLUMN tmp_flag;
-- case safe drop-column
ALTER TABLE users DROP CONSTRAINT users_legacy_check;

-- case hazard rename-column
ALTER TABLE users RENAME COLUMN name TO full_name;
-- case hazard rename-column
ALTER TABLE users RENAME email TO email_address;
-- case safe rename-column
CREATE TABLE profiles (id int PRIMARY KEY, nick text);
ALTER TABLE profiles RENAME COLUMN nick TO nickname;
-- case safe rename-column
ALTER TABLE users RENAME CONSTRAINT users_a_check TO users_age_check;

-- case hazard rename-table
ALTER TABLE users RENAME TO accounts;
-- case hazard rename-table
ALTER TABLE IF EXISTS public.orders RENAME TO purchases;
-- case safe rename-table
CREATE TABLE tmp_import (id int);
ALTER TABLE tmp_import RENAME TO imports;
-- case safe rename-table
ALTER INDEX users_email_idx RENAME TO users_email_key;

-- case hazard drop-table
DROP TABLE legacy_sessions;
-- case hazard drop-table
DROP TABLE IF EXISTS old_a, old_b CASCADE;
-- case safe drop-table
CREATE TABLE scratch (id int);
DROP TABLE scratch;
-- case safe drop-table
-- shiplock:ignore drop-table unused since release 12, see ticket 881
DROP TABLE legacy_sessions;

-- case hazard narrow-type
-- before: CREATE TABLE t2 (id int PRIMARY KEY, n bigint);
ALTER TABLE t2 ALTER COLUMN n TYPE integer;
-- case hazard narrow-type
-- before: CREATE TABLE t3 (id int PRIMARY KEY, code varchar(64));
ALTER TABLE t3 ALTER COLUMN code TYPE varchar(16);
-- case hazard narrow-type
-- before: CREATE TABLE t4 (id int PRIMARY KEY, body text);
ALTER TABLE t4 ALTER COLUMN body TYPE varchar(255);
-- case safe narrow-type
-- before: CREATE TABLE t3 (id int PRIMARY KEY, code varchar(64));
ALTER TABLE t3 ALTER COLUMN code TYPE varchar(128);
-- case safe narrow-type
CREATE TABLE t5 (id int PRIMARY KEY, n bigint);
ALTER TABLE t5 ALTER COLUMN n TYPE integer;

-- case hazard add-not-null-no-default
ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;
-- case hazard add-not-null-no-default
ALTER TABLE users ADD tenant_id bigint NOT NULL REFERENCES tenants (id);
-- case hazard add-not-null-no-default
-- SET DEFAULT is a referential action here, not the column's default
ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE SET DEFAULT;
-- case safe add-not-null-no-default
ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT 0;
-- case safe add-not-null-no-default
ALTER TABLE users ADD COLUMN tenant_id bigint;
-- case safe add-not-null-no-default
CREATE TABLE tenants (id bigint PRIMARY KEY);
ALTER TABLE tenants ADD COLUMN name text NOT NULL;

-- case hazard notx-not-idempotent
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_a_idx ON users (a);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_b_idx ON users (b);
-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS users_b_idx;
DROP INDEX CONCURRENTLY IF EXISTS users_a_idx;
-- case safe notx-not-idempotent
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_a_idx ON users (a);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_b_idx ON users (b);
-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS users_b_idx;
DROP INDEX CONCURRENTLY IF EXISTS users_a_idx;

-- case hazard down-missing
-- +goose Up
CREATE TABLE things (id int PRIMARY KEY);
-- case safe down-missing
-- +goose Up
CREATE TABLE things (id int PRIMARY KEY);
-- +goose Down
DROP TABLE things;

-- case hazard down-not-inverse
-- +goose Up
CREATE TABLE things (id int PRIMARY KEY);
CREATE TABLE others (id int PRIMARY KEY);
-- +goose Down
DROP TABLE things;
-- case hazard down-not-inverse
-- +goose Up
ALTER TABLE users ADD COLUMN nick text;
-- +goose Down
SELECT 1;
-- case safe down-not-inverse
-- +goose Up
CREATE TABLE things (id int PRIMARY KEY);
CREATE INDEX things_id_idx ON things (id);
ALTER TABLE users ADD COLUMN nick text;
-- +goose Down
ALTER TABLE users DROP COLUMN nick;
DROP TABLE things;

-- case hazard bad-ignore
-- shiplock:ignore drop-table
DROP TABLE legacy_sessions;
-- case hazard bad-ignore
-- shiplock:ignore no-such-rule it is fine
SELECT 1;
-- case safe bad-ignore
-- shiplock:ignore create-index-lock the table has 12 rows, a lookup table
CREATE INDEX countries_name_idx ON countries (name);

-- Lexical traps: keywords inside strings, dollar quotes and quoted names.
-- case safe dml-without-where
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION purge() RETURNS void LANGUAGE sql AS $fn$
  DELETE FROM users;
  UPDATE orders SET x = 1;
$fn$;
-- +goose StatementEnd
-- +goose Down
DROP FUNCTION purge();
-- case safe drop-table
SELECT E'it\'s; DROP TABLE users; --' AS s;
-- case safe drop-column
SELECT 'a\' AS "ALTER TABLE users DROP COLUMN x;";
-- case safe create-index-lock
INSERT INTO docs (body) VALUES ($$ CREATE INDEX i ON users (x); $$);
-- case hazard create-index-lock
SELECT $a$ text $a$; CREATE INDEX i2 ON users (x);
-- case hazard drop-table
SELECT 'x'; -- a comment with a quote ' in it
DROP TABLE old_stuff;
-- case hazard volatile-default
ALTER TABLE "Users" ADD COLUMN "Token" uuid DEFAULT public.gen_random_uuid();
-- case safe volatile-default
ALTER TABLE users ADD COLUMN created timestamptz DEFAULT CURRENT_TIMESTAMP;
-- case hazard set-not-null-scan
ALTER TABLE users ADD COLUMN x int, ALTER COLUMN email SET NOT NULL;
-- case hazard drop-column
-- before: CREATE TABLE t6 (id int PRIMARY KEY, a text);
-- before: ALTER TABLE t6 ADD COLUMN b text;
ALTER TABLE t6 DROP COLUMN b;
-- case safe create-index-lock
CREATE TABLE "Orders" (id int PRIMARY KEY, ref text);
CREATE INDEX ON "Orders" (ref);
-- case hazard create-index-lock
-- "Orders" (quoted, case kept) is not orders
CREATE TABLE "Orders" (id int PRIMARY KEY, ref text);
CREATE INDEX ON orders (ref);
-- case safe create-index-lock
CREATE TABLE public.t9 (id int PRIMARY KEY, ref text);
CREATE INDEX t9_ref_idx ON T9 (ref);
-- case hazard column-type-rewrite
-- before: CREATE TABLE t7 (id int PRIMARY KEY, n integer);
ALTER TABLE t7 ADD COLUMN note text, ALTER COLUMN n TYPE bigint;
-- case safe dml-without-where
UPDATE users SET a = 1 WHERE id IN (SELECT id FROM users LIMIT 1000);
-- case hazard dml-without-where
UPDATE users SET a = (SELECT max(b) FROM t WHERE t.id = 1);
