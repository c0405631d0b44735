package sqlite

import (
	"context"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// Classify: an embedded database is either there or not; the driver's busy
// timeout already waits out other writers.
func (*Dialect) Classify(error) dialect.ErrorClass { return dialect.Permanent }

// TimeoutStatements: SQLite has no lock or statement timeouts beyond the
// busy timeout set when opening.
func (*Dialect) TimeoutStatements(time.Duration, time.Duration, bool) []string { return nil }

func (*Dialect) SessionTimeouts(context.Context, dialect.Querier) ([]string, error) { return nil, nil }
