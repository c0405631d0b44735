package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shiplock/shiplock/migrate"
)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// summary is the one-line outcome of a run: "applied 3 migrations, now at
// version 20261126120000 (was 20261101000000) in 1.2s".
// A redo says "reverted 1 migration and applied 1 migration"; a repair
// names what it did to which interrupted version.
func summary(res *migrate.Result, err error) string {
	var ups, downs int
	for _, r := range res.Applied {
		if r.Direction == migrate.Down {
			downs++
		} else {
			ups++
		}
	}
	var did []string
	if res.Repair != "" && len(res.Repaired) > 0 {
		vs := make([]string, len(res.Repaired))
		for i, v := range res.Repaired {
			vs[i] = fmt.Sprint(v)
		}
		did = append(did, fmt.Sprintf("interrupted version %s: %s", strings.Join(vs, ", "), res.Repair))
	} else {
		if downs > 0 {
			did = append(did, "reverted "+plural(downs, "migration"))
		}
		if ups > 0 {
			did = append(did, "applied "+plural(ups, "migration"))
		}
	}
	if res.Unversioned {
		// No version was read or written: say what ran, by file.
		done := strings.Join(did, " and ")
		if done == "" {
			done = "applied 0 migrations"
		}
		what := done + " without versioning (goose_db_version untouched)"
		switch {
		case err != nil:
			return "failed after " + what
		case len(res.Applied) == 0:
			return "nothing to do: no migration files in range"
		}
		return fmt.Sprintf("%s, last file version %d, in %s", what, res.To, round(res.Duration))
	}
	var merr *migrate.MigrationError
	partly := errors.As(err, &merr) && merr.OutsideTx > 0
	switch {
	case errors.Is(err, migrate.ErrLockTimeout):
		return fmt.Sprintf("migration lock not acquired, at version %d; nothing changed", res.From)
	case partly && len(did) == 0:
		return fmt.Sprintf("failed at version %d after %d of its statements ran outside a transaction (recorded; see shiplock status)", merr.Version, merr.OutsideTx)
	case err != nil && len(did) == 0 && merr != nil && merr.Direction == migrate.Down:
		return fmt.Sprintf("reverting version %d failed; nothing changed, still at version %d", merr.Version, res.From)
	case err != nil && len(did) == 0 && merr != nil:
		return fmt.Sprintf("version %d failed; nothing changed, still at version %d", merr.Version, res.From)
	case err != nil && len(did) == 0:
		// Refused before any migration ran (integrity, a file, the lock):
		// res.From is where the database stays, not what failed.
		return fmt.Sprintf("failed; nothing changed, still at version %d", res.From)
	case partly:
		return fmt.Sprintf("failed after %s, now at version %d (was %d); version %d failed after %d of its statements ran outside a transaction (recorded; see shiplock status)",
			strings.Join(did, " and "), res.To, res.From, merr.Version, merr.OutsideTx)
	case err != nil:
		return fmt.Sprintf("failed after %s, now at version %d (was %d)", strings.Join(did, " and "), res.To, res.From)
	case res.Repair != "" && len(did) == 0:
		return fmt.Sprintf("nothing to repair: no migration was interrupted, at version %d", res.To)
	case len(did) == 0:
		return fmt.Sprintf("nothing to do, at version %d", res.To)
	}
	return fmt.Sprintf("%s, now at version %d (was %d) in %s", strings.Join(did, " and "), res.To, res.From, round(res.Duration))
}
