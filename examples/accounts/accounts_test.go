package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// migrateTo applies the example's migrations up to version to (0: all).
func migrateTo(t *testing.T, url string, to int64) {
	t.Helper()
	migs, err := migrate.Load(os.DirFS("migrations"), ".", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrate.New(db, postgres.Dialect{}, migs, migrate.Options{}).Up(context.Background(), migrate.UpOptions{To: to}); err != nil {
		t.Fatal(err)
	}
}

func newTestServer(t *testing.T, url string) *httptest.Server {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts := httptest.NewServer(newServer(db, slog.New(slog.NewTextHandler(io.Discard, nil))).routes())
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, method, url string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, resp.StatusCode, raw, want)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func TestAccountsAPI(t *testing.T) {
	url := testdb.Postgres(t)
	ts := newTestServer(t, url)

	// Not ready before the schema is there.
	call(t, "GET", ts.URL+"/readyz", nil, http.StatusServiceUnavailable)
	call(t, "GET", ts.URL+"/healthz", nil, http.StatusOK)
	migrateTo(t, url, schemaVersion)
	call(t, "GET", ts.URL+"/readyz", nil, http.StatusOK)

	a := call(t, "POST", ts.URL+"/accounts", map[string]any{"email": "Ada@Example.com", "display_name": "Ada"}, http.StatusCreated)
	id := int64(a["id"].(float64))
	path := ts.URL + "/accounts/" + itoa(id)
	if got := call(t, "GET", path, nil, http.StatusOK); got["email"] != "Ada@Example.com" || got["served_by"] != release {
		t.Fatalf("GET = %v", got)
	}
	// The unique index ignores case.
	call(t, "POST", ts.URL+"/accounts", map[string]any{"email": "ada@example.com"}, http.StatusConflict)
	call(t, "PATCH", path+"/email", map[string]any{"email": "ada@lovelace.dev"}, http.StatusOK)
	call(t, "POST", path+"/close", nil, http.StatusOK)
	call(t, "GET", ts.URL+"/accounts/999999", nil, http.StatusNotFound)
	call(t, "GET", ts.URL+"/accounts/x", nil, http.StatusBadRequest)

	// The triggers recorded the history.
	db, _ := postgres.Open(url)
	defer db.Close()
	var kinds string
	if err := db.QueryRow("SELECT string_agg(kind, ',' ORDER BY id) FROM account_events WHERE account_id = $1", id).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if kinds != "opened,email_changed,closed" {
		t.Fatalf("events = %s", kinds)
	}
}

// TestAllMigrationsUpAndDown runs this release on the newest schema (for
// v1: pods of the previous release keep serving while v2's migration is
// applied), then checks every Down section.
func TestAllMigrationsUpAndDown(t *testing.T) {
	url := testdb.Postgres(t)
	migrateTo(t, url, 0)
	ts := newTestServer(t, url)
	call(t, "GET", ts.URL+"/readyz", nil, http.StatusOK)
	call(t, "POST", ts.URL+"/accounts", map[string]any{"email": "grace@example.com"}, http.StatusCreated)
	if got := call(t, "GET", ts.URL+"/accounts", nil, http.StatusOK); got != nil {
		t.Fatalf("list decoded as an object: %v", got)
	}

	// Every Down works, all the way to an empty schema.
	migs, _ := migrate.Load(os.DirFS("migrations"), ".", nil, nil)
	db, _ := postgres.Open(url)
	defer db.Close()
	if _, err := migrate.New(db, postgres.Dialect{}, migs, migrate.Options{}).Down(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'account%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("tables left after down to 0: %d, %v", n, err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
