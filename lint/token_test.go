package lint

import (
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		src  string
		scs  bool
		want string // tokens joined by "|"
	}{
		{"SELECT 'a;b' ;", true, "select|a;b|;"},
		{`SELECT 'a\' , 1`, true, `select|a\|,|1`},                      // backslash literal with standard_conforming_strings
		{`SELECT 'a\' , 1'`, false, `select|a\' , 1`},                   // an escape when it is off
		{`SELECT E'it\'s;' x`, true, `select|it\'s;|x`},                 // E'' always escapes
		{"SELECT $$a;'b$$, $t$ $$ ; $t$", true, "select|a;'b|,| $$ ; "}, // dollar quotes, tags
		{"SELECT $1 + a$b", true, "select|$1|+|a$b"},
		{"SELECT /* a /* nested */ b */ 1 -- x;\n;", true, "select|1|;"},
		{`CREATE INDEX "Odd ""name""" ON "T"`, true, `create|index|Odd ""name""|on|T`},
		{`SELECT U&'\0041' , U&"x"`, true, `select|\0041|,|x`},
		{"SELECT x::int", true, "select|x|::|int"},
	}
	for _, tt := range tests {
		var got []string
		for _, tok := range tokenize(tt.src, tt.scs) {
			got = append(got, tok.text)
		}
		if g := strings.Join(got, "|"); g != tt.want {
			t.Errorf("tokenize(%q, scs=%v) = %s, want %s", tt.src, tt.scs, g, tt.want)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	src := "SELECT 1;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\nUPDATE t SET a = ';'"
	ss := splitStatements(src, 10, true)
	if len(ss) != 3 {
		t.Fatalf("got %d statements, want 3", len(ss))
	}
	if ss[1].line != 11 || ss[2].line != 12 || ss[2].kind != sUpdate || ss[2].where {
		t.Errorf("got lines %d, %d, kind %v, where %v", ss[1].line, ss[2].line, ss[2].kind, ss[2].where)
	}
}
