package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// DefaultProgressInterval is how often a long run says what it waits for
// when Options.ProgressInterval is 0.
const DefaultProgressInterval = 5 * time.Second

// progressEvery is the heartbeat interval; 0 means none.
func (m *Migrator) progressEvery() time.Duration {
	switch {
	case m.opts.ProgressInterval < 0:
		return 0
	case m.opts.ProgressInterval == 0:
		return DefaultProgressInterval
	}
	return m.opts.ProgressInterval
}

// running is the migration a run is on, for the heartbeat.
type running struct {
	mig   *Migration
	start time.Time
}

// starting logs that mig starts and tells the heartbeat.
func (m *Migrator) starting(mig *Migration, dir Direction) {
	if m.current != nil {
		m.current.Store(&running{mig: mig, start: time.Now()})
	}
	m.log.Info(dir.verb()+"ing", "version", mig.Version, "file", mig.Source)
}

// heartbeat logs, every progressEvery while the run is on, the statement
// that has run longer than that: its file:line, for how long, and whose
// locks it waits for, as another session sees it (dialect.Observer). A
// dialect that cannot look gets the migration and its elapsed time. The
// returned function stops it.
func (m *Migrator) heartbeat(ctx context.Context, conn *sql.Conn, cur *atomic.Pointer[running], todo []*Migration, dir Direction) func() {
	every := m.progressEvery()
	if every <= 0 {
		return func() {}
	}
	obs, _ := m.dialect.(dialect.Observer)
	var pid int64
	if c, ok := m.dialect.(dialect.Canceller); ok && obs != nil {
		pid, _ = c.BackendPID(ctx, conn)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r := cur.Load()
			if r == nil || time.Since(r.start) < every {
				continue
			}
			if obs == nil || pid == 0 {
				m.log.Info("still running", "version", r.mig.Version, "file", r.mig.Source, "elapsed", time.Since(r.start).Round(time.Second))
				continue
			}
			qctx, cancel := context.WithTimeout(ctx, every)
			a, err := obs.Activity(qctx, m.db, pid)
			cancel()
			if err != nil || a.Query == "" || a.Running < every {
				continue
			}
			mig, line := findStatement(todo, dir, a.Query)
			if mig == nil {
				mig = r.mig // shiplock's own bookkeeping
			}
			attrs := []any{"version", mig.Version, "statement", fmt.Sprintf("%s:%d", mig.Source, line), "running", a.Running.Round(time.Second)}
			if line == 0 {
				attrs[3] = mig.Source
			}
			if a.BlockedBy != "" {
				attrs = append(attrs, "waiting_for", a.BlockedBy)
			}
			m.log.Info("still running", attrs...)
		}
	}()
	return func() { close(done); <-stopped }
}

// findStatement finds the statement of todo whose text the server shows
// (possibly cut to track_activity_query_size) and its first line.
func findStatement(todo []*Migration, dir Direction, query string) (*Migration, int) {
	query = strings.TrimSpace(query)
	for _, mig := range todo {
		for _, s := range mig.Statements(dir) {
			if strings.HasPrefix(strings.TrimSpace(s.SQL), query) {
				return mig, s.Line
			}
		}
	}
	return nil, 0
}
