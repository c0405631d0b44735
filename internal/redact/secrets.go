package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MinSecretLen is the length, in bytes, from which a known secret is masked
// wherever it occurs, even inside a longer word.
//
// The trade-off: a password can only be recognised by its text, and a word
// that contains it cannot be told apart from a message that glued the
// password to something else ("user=appsecret1"), so a secret of MinSecretLen
// bytes or more is masked inside other words too: with the password "secret",
// "secretary" prints as "xxxxxary". Masking a one-, two- or three-byte secret
// that way would shred every message (and the pattern of masks would spell the
// password out), so a shorter secret is masked only where it stands alone,
// between bytes that are not letters, digits or '_'. Such a password is weak
// anyway; the structural redaction of [URL] still hides it inside any
// connection string, whatever its length.
const MinSecretLen = 4

// Secrets is a set of known secret strings (passwords taken from PGPASSWORD
// or from a connection string) that are masked wherever they occur in text.
//
// The zero value is an empty set, ready to use. A nil *Secrets is valid for
// String and Err, which then apply only the structural redaction of [URL];
// Add and AddDSN need a non-nil receiver. Secrets is safe for concurrent use.
type Secrets struct {
	mu   sync.RWMutex
	vals []string // longest first; replaced, never modified in place
}

// NewSecrets returns a set holding the given secrets, as if added with Add.
func NewSecrets(secrets ...string) *Secrets {
	s := new(Secrets)
	s.Add(secrets...)
	return s
}

// Add adds secrets to the set, together with the spellings they take when
// percent-encoded in a URL (p@ss as p%40ss) or quoted by Go or JSON, so that
// an error message quoting a URL or a %q-formatted string is covered too.
// Empty strings are ignored.
func (s *Secrets) Add(secrets ...string) {
	var add []string
	for _, v := range secrets {
		if v == "" {
			continue
		}
		add = append(add, spellings(v)...)
	}
	if len(add) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(s.vals)+len(add))
	vals := make([]string, 0, len(s.vals)+len(add))
	for _, v := range append(append([]string(nil), s.vals...), add...) {
		if !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	sort.SliceStable(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	s.vals = vals
}

// AddDSN adds every password found in the connection string dsn (in any form
// [URL] recognises), decoded as the database driver would decode it. It is
// meant for the connection string a command was given, so that the password
// is masked even where it later appears outside any connection string.
//
// A URL's userinfo password may hold an unencoded space, which ends a URL in
// running text: since dsn is one connection string, its userinfo runs from
// "://" to the last '@' before the host, spaces included.
func (s *Secrets) AddDSN(dsn string) {
	spans := findAll(dsn)
	if sp, ok := spacedUserinfo(dsn); ok {
		spans = append(spans, sp)
	}
	if m := spacedMySQLRE.FindStringSubmatchIndex(dsn); m != nil && strings.IndexFunc(dsn[m[2]:m[3]], isSpace) >= 0 {
		spans = append(spans, span{m[2], m[3], kindRaw})
	}
	for _, sp := range spans {
		raw := dsn[sp.start:sp.end]
		vals := []string{raw}
		switch sp.kind {
		case kindPercent:
			if v, err := url.PathUnescape(raw); err == nil {
				vals = append(vals, v)
			}
			if v, err := url.QueryUnescape(raw); err == nil {
				vals = append(vals, v)
			}
		case kindLibpqQuote, kindDoubleQuote:
			vals = append(vals, unquote(raw))
		}
		s.Add(vals...)
	}
}

// String returns text with every known secret masked (see [MinSecretLen]) and
// then every password in a connection string, as [URL] does.
func (s *Secrets) String(text string) string {
	if s != nil {
		s.mu.RLock()
		vals := s.vals
		s.mu.RUnlock()
		text = apply(text, findKnown(text, vals))
	}
	return URL(text)
}

// Err returns err unchanged when its message needs no redaction, and
// otherwise an error whose Error is the redacted message and which unwraps to
// err, so errors.Is and errors.As still see the original chain. Err(nil) is
// nil. Note that the errors in that chain still hold their own unredacted
// text: print the returned error, not the ones found by unwrapping it.
func (s *Secrets) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := s.String(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// findKnown returns every occurrence of every secret in text. Occurrences may
// overlap; apply masks their union as one.
func findKnown(text string, vals []string) []span {
	var out []span
	for _, v := range vals {
		short := len(v) < MinSecretLen
		for i := 0; i < len(text); {
			j := strings.Index(text[i:], v)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(v)
			if !short || standsAlone(text, start, end) {
				out = append(out, span{start, end, kindRaw})
			}
			i = start + 1
		}
	}
	return merge(out)
}

// standsAlone reports whether text[start:end] is not part of a longer word.
func standsAlone(text string, start, end int) bool {
	return (start == 0 || !isWordByte(text[start-1])) && (end == len(text) || !isWordByte(text[end]))
}

// spellings returns v and the other forms it takes inside URLs and quoted
// strings.
func spellings(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	// The userinfo encoding differs from both of the above (it keeps '+'
	// and escapes '@', ':' and '/').
	out = append(out, strings.TrimPrefix(url.UserPassword("u", v).String(), "u:"))
	q := strconv.Quote(v)
	out = append(out, q[1:len(q)-1])
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			j := strings.TrimSuffix(b.String(), "\n")
			out = append(out, j[1:len(j)-1])
		}
	}
	return out
}

// unquote removes the quotes around a quoted value and resolves its backslash
// escapes, as libpq does for 'quoted' values.
func unquote(raw string) string {
	if len(raw) < 2 {
		return raw
	}
	q := raw[0]
	raw = raw[1:]
	if raw[len(raw)-1] == q {
		raw = raw[:len(raw)-1]
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			i++
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

// spacedMySQLRE matches a go-sql-driver DSN that is the whole string, its
// password (submatch 1) running to the last '@' before the address: white
// space in it hides it from findAll, which reads words.
var spacedMySQLRE = regexp.MustCompile(`^\s*[^\s:@/'"()=]*:(.*)@(?:(?:tcp[46]?|unix)\([^()]*\)|\([^()]*\)/|/)`)

// dsnURLRE matches a connection string that is a URL.
var dsnURLRE = regexp.MustCompile(`^\s*[A-Za-z][A-Za-z0-9+.\-]*://`)

// spacedUserinfo returns the userinfo password of the URL dsn when white
// space in it hides it from findAll. The authority ends at the first '/', '?'
// or '#' and the userinfo at the last '@' before it; a password with an
// unencoded '/', '?' or '#' strands its '@' after that: then the last '@'.
func spacedUserinfo(dsn string) (span, bool) {
	loc := dsnURLRE.FindStringIndex(dsn)
	if loc == nil {
		return span{}, false
	}
	body := dsn[loc[1]:]
	authEnd := strings.IndexAny(body, "/?#")
	if authEnd < 0 {
		authEnd = len(body)
	}
	at := strings.LastIndexByte(body[:authEnd], '@')
	if at < 0 {
		at = strings.LastIndexByte(body, '@')
	}
	if at < 0 || strings.IndexFunc(body[:at], isSpace) < 0 {
		return span{}, false // no space: findAll sees it
	}
	colon := strings.IndexByte(body[:at], ':')
	if colon < 0 {
		return span{}, false
	}
	return span{loc[1] + colon + 1, loc[1] + at, kindPercent}, true
}
