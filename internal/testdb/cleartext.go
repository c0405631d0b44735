package testdb

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cleartextGroup is the role whose members an ephemeral cluster asks for
// their password in cleartext (pg_hba.conf method "password").
const cleartextGroup = "shiplock_cleartext"

// CreateCleartextRole is [Server.CreateRole] for a role that the server asks
// for its password in cleartext over TCP, as a server configured with the
// "password" method does: a client that answers sends the password itself.
// It needs an ephemeral cluster, whose pg_hba.conf testdb writes; with
// SHIPLOCK_TEST_POSTGRES_URL the test is skipped (or failed, see the
// package documentation).
func (s *Server) CreateCleartextRole(t testing.TB) Role {
	t.Helper()
	if s.cluster == nil {
		report(t, os.Getenv, &unavailableError{"testdb: a role asked for a cleartext password needs an ephemeral cluster, whose pg_hba.conf testdb writes: unset " + EnvPostgresURL})
	}
	r := s.CreateRole(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Parallel tests may create the group at once.
	create := `DO $$ BEGIN CREATE ROLE ` + cleartextGroup + ` NOLOGIN;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`
	if err := s.exec(ctx, create); err != nil {
		t.Fatalf("testdb: create role %s: %v", cleartextGroup, err)
	}
	if err := s.exec(ctx, "GRANT "+cleartextGroup+" TO "+pgx.Identifier{r.Name}.Sanitize()); err != nil {
		t.Fatalf("testdb: grant %s: %v", cleartextGroup, err)
	}
	return r
}
