package gate

import (
	"database/sql"
	"net/http"

	"github.com/shiplock/shiplock/dialect"
)

// Handler returns an http.Handler for an application's readiness endpoint
// (/readyz): each request runs one Check, bounded by the request's context,
// and answers 200 with the reason when the schema is ready, 503 with the
// reason when it is not, and 503 "schema check failed: ..." when the check
// could not be made. The body is one line of plain text; any method is
// accepted, and HEAD gets no body.
//
// The error text of a failed check (host, user and database names, never a
// password from pgx) is part of the 503 body: mount the handler where only
// the kubelet and operators can reach it. The handler is safe for
// concurrent use; each request takes one connection from db for the
// duration of the check.
func Handler(db *sql.DB, d dialect.Dialect, need int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := Check(r.Context(), db, d, need)
		code, body := http.StatusOK, st.Reason
		switch {
		case err != nil:
			code, body = http.StatusServiceUnavailable, "schema check failed: "+err.Error()
		case !st.Ready:
			code = http.StatusServiceUnavailable
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body + "\n"))
		}
	})
}
