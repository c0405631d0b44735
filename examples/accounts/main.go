// Command accounts is the example service that shiplock migrates: a small
// accounts API over PostgreSQL. Its schema ships as goose-format migrations
// in ./migrations, built into a migration image with the same tag as the
// app; /readyz passes only when the schema is at the version this build
// needs (package gate).
//
// Configuration comes from the environment, as in the manifests it was
// written for: PORT_NUM (default 8080), PGHOST, PGPORT, PGUSER, PGPASSWORD,
// and PGDBNAME or PGDATABASE.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("release", release)
	if err := run(log); err != nil {
		log.Error("accounts stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := openDB(os.LookupEnv)
	if err != nil {
		return err
	}
	defer db.Close()

	port := os.Getenv("PORT_NUM")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{
		Addr:              net.JoinHostPort("", port),
		Handler:           newServer(db, log).routes(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "port", port, "schema_version", schemaVersion)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, finish in-flight requests.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openDB builds a libpq connection string from the environment (PGDBNAME is
// accepted for PGDATABASE, as in the manifests) and opens a pool.
func openDB(lookup func(string) (string, bool)) (*sql.DB, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	var parts []string
	for _, kv := range [][2]string{{"PGHOST", "host"}, {"PGPORT", "port"}, {"PGUSER", "user"}, {"PGPASSWORD", "password"}, {"PGDATABASE", "dbname"}, {"PGSSLMODE", "sslmode"}} {
		v := get(kv[0])
		if v == "" && kv[0] == "PGDATABASE" {
			v = get("PGDBNAME")
		}
		if v != "" {
			parts = append(parts, kv[1]+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)+"'")
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no database configured: set PGHOST, PGUSER, PGPASSWORD and PGDBNAME")
	}
	db, err := postgres.Open(strings.Join(parts, " "))
	if err != nil {
		return nil, fmt.Errorf("database settings: %w", err)
	}
	db.SetMaxOpenConns(10)
	return db, nil
}
