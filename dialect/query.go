package dialect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
)

// QueryVersions runs query, which selects id, version_id, is_applied and
// tstamp (NULL allowed) of goose's version table, and scans the rows: the
// one reader of version rows for every dialect.
func QueryVersions(ctx context.Context, q Querier, query string) ([]VersionRow, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VersionRow
	for rows.Next() {
		var (
			r  VersionRow
			ts sql.NullTime
		)
		if err := rows.Scan(&r.ID, &r.Version, &r.IsApplied, &ts); err != nil {
			return nil, err
		}
		r.Time = ts.Time
		out = append(out, r)
	}
	return out, rows.Err()
}

// QueryAll runs query, the version rows and the records in one result, and
// scans them (ListAll's one round trip). Each row is a flag (true for a
// version row), then id, version_id, is_applied, tstamp (a version row's),
// then updated_at, source, checksum, state, statement, in_flight, total,
// pid, started_at and alive (a record's); the other kind's columns NULL.
func QueryAll(ctx context.Context, q Querier, query string) ([]VersionRow, []Record, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		versions []VersionRow
		records  []Record
	)
	for rows.Next() {
		var (
			isVersion                bool
			id, version              int64
			applied, inFlight, alive sql.NullBool
			tstamp, updated, started sql.NullTime
			source, checksum, state  sql.NullString
			statement, total, pid    sql.NullInt64
		)
		if err := rows.Scan(&isVersion, &id, &version, &applied, &tstamp, &updated, &source, &checksum, &state, &statement,
			&inFlight, &total, &pid, &started, &alive); err != nil {
			return nil, nil, err
		}
		if isVersion {
			versions = append(versions, VersionRow{ID: id, Version: version, IsApplied: applied.Bool, Time: tstamp.Time})
		} else {
			records = append(records, Record{Version: version, Source: source.String, Checksum: checksum.String, State: state.String,
				Statement: int(statement.Int64), Updated: updated.Time, InFlight: inFlight.Bool, Total: int(total.Int64),
				Pid: pid.Int64, Started: started.Time, Alive: alive.Bool})
		}
	}
	return versions, records, rows.Err()
}

// IsTLSFailure reports whether err is a TLS handshake's failure: a
// certificate that does not verify, or a peer that does not speak TLS. A
// Classifier makes it Permanent: retrying meets the same certificate.
func IsTLSFailure(err error) bool {
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
	)
	return errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) ||
		errors.As(err, &invalidErr) || errors.As(err, &recordErr)
}
