package lint

import (
	"fmt"
	"testing"
)

func TestQuick(t *testing.T) {
	src := `-- +goose Up
CREATE TABLE a (id int PRIMARY KEY, name varchar(20));
CREATE INDEX a_name ON a (name);
CREATE INDEX u_email ON users (email);
ALTER TABLE users ADD COLUMN created timestamptz DEFAULT clock_timestamp();
-- shiplock:ignore drop-column the app stopped reading it in v41
ALTER TABLE users DROP COLUMN legacy;
ALTER TABLE users DROP COLUMN other;
UPDATE users SET x = 'it''s; a trap' ;
SELECT $$ CREATE INDEX x ON y(z); $$;
-- shiplock:ignore create-index-lock
CREATE INDEX ON orders (x);
-- +goose Down
DROP TABLE a;
ALTER TABLE users DROP COLUMN created;
`
	rep, err := Check([]Input{{Name: "1_x.sql", Version: 1, Src: []byte(src)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		fmt.Printf("%s:%d: %s %s %s\n", f.File, f.Line, f.Rule, f.Severity, f.Message)
	}
	fmt.Println(rep.Suppressed)
}
