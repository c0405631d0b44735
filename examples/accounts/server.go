package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/gate"
)

// Account is the API's view of a row of accounts.
type Account struct {
	ID          int64      `json:"id"`
	Email       string     `json:"email"`
	DisplayName string     `json:"display_name"`
	Phone       *string    `json:"phone,omitempty"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	Release     string     `json:"served_by"`
}

type server struct {
	db  *sql.DB
	log *slog.Logger
}

func newServer(db *sql.DB, log *slog.Logger) *server { return &server{db: db, log: log} }

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	// Ready only when the schema is at (or past) what this build needs.
	mux.Handle("GET /readyz", gate.Handler(s.db, postgres.Dialect{}, schemaVersion))
	mux.HandleFunc("POST /accounts", s.create)
	mux.HandleFunc("GET /accounts", s.list)
	mux.HandleFunc("GET /accounts/{id}", s.get)
	mux.HandleFunc("PATCH /accounts/{id}/email", s.updateEmail)
	mux.HandleFunc("POST /accounts/{id}/close", s.close)
	return mux
}

// columns lists what this release reads: v1 never names phone, so it keeps
// working while v2's schema is in place.
func columns() string {
	c := "id, email, display_name, status, created_at, closed_at"
	if hasPhone {
		c += ", phone"
	}
	return c
}

func scan(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	dest := []any{&a.ID, &a.Email, &a.DisplayName, &a.Status, &a.CreatedAt, &a.ClosedAt}
	if hasPhone {
		dest = append(dest, &a.Phone)
	}
	err := row.Scan(dest...)
	a.Release = release
	return a, err
}

type createRequest struct {
	Email       string  `json:"email"`
	DisplayName string  `json:"display_name"`
	Phone       *string `json:"phone"`
}

func (s *server) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if !strings.Contains(req.Email, "@") {
		s.fail(w, http.StatusBadRequest, "email: want an address")
		return
	}
	if req.Phone != nil && !hasPhone {
		s.fail(w, http.StatusBadRequest, "phone: not supported by release "+release)
		return
	}
	q := "INSERT INTO accounts (email, display_name) VALUES ($1, $2) RETURNING " + columns()
	args := []any{req.Email, req.DisplayName}
	if hasPhone {
		q = "INSERT INTO accounts (email, display_name, phone) VALUES ($1, $2, $3) RETURNING " + columns()
		args = append(args, req.Phone)
	}
	a, err := scan(s.db.QueryRowContext(r.Context(), q, args...))
	if err != nil {
		s.dbError(w, err)
		return
	}
	s.reply(w, http.StatusCreated, a)
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	a, err := scan(s.db.QueryRowContext(r.Context(), "SELECT "+columns()+" FROM accounts WHERE id = $1", id))
	if err != nil {
		s.dbError(w, err)
		return
	}
	s.reply(w, http.StatusOK, a)
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.QueryContext(r.Context(), "SELECT "+columns()+" FROM accounts WHERE status = 'open' ORDER BY created_at DESC LIMIT 100")
	if err != nil {
		s.dbError(w, err)
		return
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		a, err := scan(rows)
		if err != nil {
			s.dbError(w, err)
			return
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		s.dbError(w, err)
		return
	}
	s.reply(w, http.StatusOK, out)
}

func (s *server) updateEmail(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	var req struct {
		Email string `json:"email"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.Contains(req.Email, "@") {
		s.fail(w, http.StatusBadRequest, "email: want an address")
		return
	}
	a, err := scan(s.db.QueryRowContext(r.Context(), "UPDATE accounts SET email = $2 WHERE id = $1 RETURNING "+columns(), id, req.Email))
	if err != nil {
		s.dbError(w, err)
		return
	}
	s.reply(w, http.StatusOK, a)
}

func (s *server) close(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	a, err := scan(s.db.QueryRowContext(r.Context(),
		"UPDATE accounts SET status = 'closed', closed_at = coalesce(closed_at, now()) WHERE id = $1 RETURNING "+columns(), id))
	if err != nil {
		s.dbError(w, err)
		return
	}
	s.reply(w, http.StatusOK, a)
}

func (s *server) id(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, http.StatusBadRequest, "id: want a positive number")
		return 0, false
	}
	return id, true
}

func (s *server) dbError(w http.ResponseWriter, err error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.fail(w, http.StatusNotFound, "no such account")
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		s.fail(w, http.StatusConflict, "email already in use")
	case errors.As(err, &pgErr) && pgErr.Code == "23514":
		s.fail(w, http.StatusBadRequest, "invalid value: "+pgErr.ConstraintName)
	default:
		s.log.Error("database", "err", err)
		s.fail(w, http.StatusServiceUnavailable, "database unavailable")
	}
}

func (s *server) fail(w http.ResponseWriter, code int, msg string) {
	s.reply(w, code, map[string]string{"error": msg})
}

func (s *server) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
