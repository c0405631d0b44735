package dialect

import (
	"fmt"
	"strings"
)

// DefaultTable is goose's version table.
const DefaultTable = "goose_db_version"

// defaultRecords is shiplock's own table beside goose_db_version.
const defaultRecords = "shiplock_versions"

// maxIdent is PostgreSQL's identifier length (NAMEDATALEN-1): a longer name
// is truncated by the server, so goose and shiplock could name different
// tables.
const maxIdent = 63

// recordsSuffix names shiplock's own table beside a custom version table:
// two version tables in one schema (one per service, goose's usual reason for
// -table) must not share checksum records, which are keyed by version.
const recordsSuffix = "_shiplock"

// Ident is one part of a table name as written in SQL.
type Ident struct {
	// Text is the name without quotes (doubled quotes undone).
	Text string
	// Quoted: written in double quotes, so case is kept.
	Quoted bool
}

// Table is goose's version table as goose's -table flag and GOOSE_TABLE
// name it: "name" or "schema.name", each part a plain SQL identifier or one
// in double quotes. goose pastes the name into its SQL unquoted, so a plain
// part means what it means there (PostgreSQL folds it to lower case).
//
// The zero value is goose_db_version, found through search_path.
type Table struct {
	raw          string
	schema, name Ident
}

// ParseTable parses a version table name; "" is the default table. The
// error says what is wrong without touching any database.
func ParseTable(s string) (Table, error) {
	if s == "" || s == DefaultTable {
		return Table{}, nil
	}
	parts, err := splitIdents(s)
	if err != nil {
		return Table{}, fmt.Errorf("table name %q: %v", s, err)
	}
	t := Table{raw: s, name: parts[len(parts)-1]}
	if len(parts) == 2 {
		t.schema = parts[0]
	}
	if !t.IsDefaultName() && len(t.name.Text)+len(recordsSuffix) > maxIdent {
		return Table{}, fmt.Errorf("table name %q: at most %d bytes, so that shiplock's own table %s%s beside it fits PostgreSQL's %d",
			s, maxIdent-len(recordsSuffix), t.name.Text, recordsSuffix, maxIdent)
	}
	return t, nil
}

// splitIdents splits "a", "a.b", `"A"."b c"` into one or two identifiers.
func splitIdents(s string) ([]Ident, error) {
	var out []Ident
	for {
		var id Ident
		if strings.HasPrefix(s, `"`) {
			end := -1
			for i := 1; i < len(s); i++ {
				if s[i] != '"' {
					continue
				}
				if i+1 < len(s) && s[i+1] == '"' {
					i++
					continue
				}
				end = i
				break
			}
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted identifier")
			}
			id = Ident{Text: strings.ReplaceAll(s[1:end], `""`, `"`), Quoted: true}
			s = s[end+1:]
			if id.Text == "" {
				return nil, fmt.Errorf("empty quoted identifier")
			}
			if strings.ContainsAny(id.Text, "'\\\x00") {
				return nil, fmt.Errorf("quotes, backslashes and NUL are not supported in a quoted identifier")
			}
		} else {
			n := 0
			for n < len(s) && s[n] != '.' {
				c := s[n]
				ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
					n > 0 && (c >= '0' && c <= '9' || c == '$')
				if !ok {
					return nil, fmt.Errorf("%q: a plain identifier is a letter or _ followed by letters, digits, _ or $ (put other names in double quotes)", c)
				}
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("empty identifier: want NAME or SCHEMA.NAME")
			}
			id = Ident{Text: s[:n]}
			s = s[n:]
		}
		if len(id.Text) > maxIdent {
			return nil, fmt.Errorf("%q is longer than %d bytes (PostgreSQL would truncate it)", id.Text, maxIdent)
		}
		out = append(out, id)
		if s == "" {
			break
		}
		if s[0] != '.' || len(out) == 2 {
			return nil, fmt.Errorf("want NAME or SCHEMA.NAME")
		}
		s = s[1:]
	}
	return out, nil
}

// String is the name as given ("goose_db_version" for the zero value).
func (t Table) String() string {
	if t.raw == "" {
		return DefaultTable
	}
	return t.raw
}

// IsZero reports whether t is goose_db_version, unqualified.
func (t Table) IsZero() bool { return t.raw == "" }

// Schema is the schema part; Text is "" when the name is unqualified.
func (t Table) Schema() Ident { return t.schema }

// Name is the table part.
func (t Table) Name() Ident {
	if t.raw == "" {
		return Ident{Text: DefaultTable}
	}
	return t.name
}

// IsDefaultName reports whether the table part is goose_db_version (in any
// schema).
func (t Table) IsDefaultName() bool {
	n := t.Name()
	return n.Text == DefaultTable || !n.Quoted && strings.ToLower(n.Text) == DefaultTable
}

// Records is the name of shiplock's own table (checksums and progress
// markers) for this version table: in the same schema, shiplock_versions
// beside goose_db_version, NAME_shiplock beside any other NAME.
func (t Table) Records() Ident {
	if t.IsDefaultName() {
		return Ident{Text: defaultRecords}
	}
	return Ident{Text: t.name.Text + recordsSuffix, Quoted: t.name.Quoted}
}

// Names are the two tables as shown to people: the version table as given,
// and shiplock's own table, qualified as the version table is.
func (t Table) Names() (versions, records string) {
	r := t.Records()
	rs := r.Text
	if r.Quoted {
		rs = `"` + strings.ReplaceAll(rs, `"`, `""`) + `"`
	}
	if s := t.schema; s.Text != "" {
		ss := s.Text
		if s.Quoted {
			ss = `"` + strings.ReplaceAll(ss, `"`, `""`) + `"`
		}
		rs = ss + "." + rs
	}
	return t.String(), rs
}
