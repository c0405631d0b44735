package dialect_test

import (
	"strings"
	"testing"

	"github.com/shiplock/shiplock/dialect"
)

func TestParseTable(t *testing.T) {
	for _, tt := range []struct {
		in, versions, records string
		schema, name          dialect.Ident
	}{
		{"", "goose_db_version", "shiplock_versions", dialect.Ident{}, dialect.Ident{Text: "goose_db_version"}},
		{"goose_db_version", "goose_db_version", "shiplock_versions", dialect.Ident{}, dialect.Ident{Text: "goose_db_version"}},
		{"public.goose_db_version", "public.goose_db_version", "public.shiplock_versions", dialect.Ident{Text: "public"}, dialect.Ident{Text: "goose_db_version"}},
		{"app_versions", "app_versions", "app_versions_shiplock", dialect.Ident{}, dialect.Ident{Text: "app_versions"}},
		{"Migr.App$1", "Migr.App$1", "Migr.App$1_shiplock", dialect.Ident{Text: "Migr"}, dialect.Ident{Text: "App$1"}},
		{`"my ""x"" s"."T.1"`, `"my ""x"" s"."T.1"`, `"my ""x"" s"."T.1_shiplock"`, dialect.Ident{Text: `my "x" s`, Quoted: true}, dialect.Ident{Text: "T.1", Quoted: true}},
	} {
		tab, err := dialect.ParseTable(tt.in)
		if err != nil {
			t.Errorf("ParseTable(%q): %v", tt.in, err)
			continue
		}
		v, r := tab.Names()
		if v != tt.versions || r != tt.records || tab.Schema() != tt.schema || tab.Name() != tt.name {
			t.Errorf("ParseTable(%q) = %s, %s, %+v, %+v; want %s, %s, %+v, %+v", tt.in, v, r, tab.Schema(), tab.Name(), tt.versions, tt.records, tt.schema, tt.name)
		}
	}
}

func TestParseTableRejects(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.c":                        "want NAME or SCHEMA.NAME",
		"a;drop table x":               `';'`,
		"1abc":                         `'1'`,
		"a.":                           "empty identifier",
		".a":                           "empty identifier",
		`"abc`:                         "unterminated",
		`""`:                           "empty quoted",
		`"a'b"`:                        "quotes, backslashes",
		`"a"b`:                         "want NAME or SCHEMA.NAME",
		"my-table":                     `'-'`,
		strings.Repeat("x", 64):        "longer than 63 bytes",
		strings.Repeat("x", 55):        "at most 54 bytes",
		"s." + strings.Repeat("x", 64): "longer than 63",
	} {
		_, err := dialect.ParseTable(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "table name") {
			t.Errorf("ParseTable(%q) = %v; want an error with %q", in, err, want)
		}
	}
}
