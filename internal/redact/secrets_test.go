package redact_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/shiplock/shiplock/internal/redact"
)

func TestSecretsString(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"every occurrence", []string{"hunter22"},
			"auth hunter22 failed; retry with hunter22",
			"auth xxxxx failed; retry with xxxxx"},
		{"percent-encoded in a URL fragment of text", []string{"p@ss word"},
			"host h: p%40ss%20word and p%40ss+word and p%40ss%20word",
			"host h: xxxxx and xxxxx and xxxxx"},
		{"Go quoted", []string{`pa"ss\word`},
			fmt.Sprintf("bad %q", `pa"ss\word`),
			`bad "xxxxx"`},
		{"JSON escaped", []string{"a<b>&c"},
			`{"msg":"a\u003cb\u003e\u0026c"}`,
			`{"msg":"xxxxx"}`},
		{"substring of a longer word is still masked", []string{"secret"},
			"the secretary knows the secret",
			"the xxxxxary knows the xxxxx"},
		{"short secret only as a whole word", []string{"ab"},
			"ab abc cab ab. (ab)",
			"xxxxx abc cab xxxxx. (xxxxx)"},
		{"short secret at MinSecretLen-1", []string{"abc"},
			"abc abcd", "xxxxx abcd"},
		{"secret at MinSecretLen masked inside words", []string{"abcd"},
			"abcd _abcd_", "xxxxx _xxxxx_"},
		{"overlapping secrets are masked as one", []string{"abcdef", "defghi"},
			"xx abcdefghi yy", "xx xxxxx yy"},
		{"adjacent occurrences are masked as one", []string{"s3cret"},
			"s3crets3cret", "xxxxx"},
		{"repeated characters", []string{"aaaa"},
			"aaaaaa b", "xxxxx b"},
		{"DSN patterns still apply", []string{"unrelated"},
			"postgres://u:pw@h/db", "postgres://u:xxxxx@h/db"},
		{"empty secret is ignored", []string{""},
			"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := redact.NewSecrets(tt.secrets...)
			if got := s.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecretsNilAndZero(t *testing.T) {
	const in = "postgres://u:pw@h/db failed for hunter22"
	const want = "postgres://u:xxxxx@h/db failed for hunter22"
	var nilSecrets *redact.Secrets
	if got := nilSecrets.String(in); got != want {
		t.Errorf("nil.String = %q, want %q", got, want)
	}
	var zero redact.Secrets
	if got := zero.String(in); got != want {
		t.Errorf("zero.String = %q, want %q", got, want)
	}
	zero.Add("hunter22")
	if got := zero.String(in); got != "postgres://u:xxxxx@h/db failed for xxxxx" {
		t.Errorf("after Add: %q", got)
	}
}

func TestSecretsAddDSN(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		text string // contains the decoded password
	}{
		{"url userinfo, encoded", "postgres://u:p%40ss%2Fw@h/db", "server said p@ss/w is wrong"},
		{"url query", "postgres://h/db?password=q%26r+s", "server said q&r s is wrong"},
		{"keyword quoted", `host=h password='it\'s secret'`, "server said it's secret is wrong"},
		{"keyword plain", "host=h password=plainpw", "server said plainpw is wrong"},
		{"mysql dsn", "root:my@pw@tcp(h:3306)/db", "server said my@pw is wrong"},
		{"mysql dsn, space", "root:my pw@tcp(h:3306)/db", "server said my pw is wrong"},
		{"mysql dsn, space, @ and /", "root:my @p/w@tcp(h:3306)/db?parseTime=true", "server said my @p/w is wrong"},
		{"url userinfo, unencoded space", "postgres://app:Pa ss99@db/app", "server said Pa ss99 is wrong"},
		{"url userinfo, space and @", "postgres://app:Pa ss@99@db:5432/app?sslmode=disable", "server said Pa ss@99 is wrong"},
		{"url userinfo, space and /", "postgres://app:Pa ss/99@db/app", "server said Pa ss/99 is wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s redact.Secrets
			s.AddDSN(tt.dsn)
			got := s.String(tt.text)
			if got != "server said xxxxx is wrong" {
				t.Errorf("String(%q) = %q", tt.text, got)
			}
		})
	}
}

func TestSecretsErr(t *testing.T) {
	s := redact.NewSecrets("hunter22")
	if s.Err(nil) != nil {
		t.Error("Err(nil) != nil")
	}
	clean := errors.New("nothing secret")
	if got := s.Err(clean); got != clean {
		t.Errorf("Err changed an error with nothing to redact: %v", got)
	}
	wrapped := fmt.Errorf("open with hunter22: %w", fs.ErrNotExist)
	got := s.Err(wrapped)
	if got.Error() != "open with xxxxx: file does not exist" {
		t.Errorf("Err().Error() = %q", got.Error())
	}
	if !errors.Is(got, fs.ErrNotExist) {
		t.Error("Err lost the wrapped error")
	}
}

func TestSecretsConcurrent(t *testing.T) {
	var s redact.Secrets
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.Add(fmt.Sprintf("secret-%d", i))
		}()
		go func() {
			defer wg.Done()
			_ = s.String("secret-1 secret-2")
		}()
	}
	wg.Wait()
	got := s.String("secret-0 secret-7")
	if strings.Contains(got, "secret-") {
		t.Errorf("after concurrent Add: %q", got)
	}
}
