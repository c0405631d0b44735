// Package redact is the one place in shiplock that removes passwords from
// text: connection strings (URL, libpq keyword/value and go-sql-driver/mysql
// forms), known secret strings anywhere in arbitrary text, slog records and
// byte streams.
//
// Redaction is best effort by construction: it recognises what it can and,
// where a malformed string makes the boundary of a password ambiguous, masks
// too much rather than too little. Every masked value is replaced by [Mask],
// whatever its length, so the output does not reveal how long a password is.
package redact

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mask replaces every redacted value. It is the same string pgx uses in its
// own redacted connection strings, so output from both reads alike.
const Mask = "xxxxx"

// URL returns s with every password it can recognise replaced by [Mask].
// Despite its name, s may be any text (an error message, a log line) that
// contains connection strings; text that contains none is returned unchanged.
// Recognised forms:
//
//   - URLs of any scheme: the userinfo password (postgres://user:secret@host),
//     percent-encoded or not, and the values of query parameters whose name
//     looks like a password (password, sslpassword, passwd, pwd, ... see
//     below);
//   - keyword/value pairs as in libpq DSNs and logfmt, password=secret,
//     password='quoted secret' or password = "secret", for the same names;
//   - JSON members, "password": "secret";
//   - go-sql-driver/mysql DSNs, user:secret@tcp(host:3306)/db;
//   - the PASSWORD 'secret' clause of SQL's CREATE/ALTER ROLE and USER.
//
// A name "looks like a password" when, lower-cased, it contains "password" or
// ends in "passwd", "passphrase", "pwd" or "secret" (PGPASSWORD,
// db_password, client_secret).
//
// When a URL is malformed in a way that leaves it unclear where its password
// ends (an unencoded '/', '?' or '#' in it), everything from the userinfo's
// first ':' to the last '@' is masked, which may hide part of the host.
// URL is idempotent: URL(URL(s)) == URL(s).
func URL(s string) string {
	return apply(s, findAll(s))
}

// valueKind says how a found password value is spelled, so that
// Secrets.AddDSN can decode it.
type valueKind int

const (
	kindRaw         valueKind = iota // as is
	kindPercent                      // percent-encoded (URL userinfo or query)
	kindLibpqQuote                   // 'quoted' with backslash escapes
	kindDoubleQuote                  // "quoted" with backslash escapes
)

// span is a password value found in a text: s[start:end].
type span struct {
	start, end int
	kind       valueKind
}

var (
	// urlRE finds URLs of any scheme. A URL runs to the next white space;
	// urlSpans shortens it when it was opened by a quote or bracket.
	urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://\S*`)

	// keyValueRE finds key=value pairs (libpq DSNs, logfmt). The key's
	// leading part is matched greedily so that the match starts at the
	// beginning of the word (db_password, PGPASSWORD).
	keyValueRE = regexp.MustCompile(`(?i)[a-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret)[a-z0-9_.\-]*\s*=\s*`)

	// jsonRE finds "key": in JSON, for the same keys.
	jsonRE = regexp.MustCompile(`(?i)"[^"\\]*(?:password|passwd|passphrase|pwd|secret)[^"\\]*"\s*:\s*"`)

	// mysqlRE finds go-sql-driver/mysql DSNs: user:password@proto(addr)/db
	// or user:password@/db. The password may hold '@', ':' and '/'
	// unencoded, so it runs (greedily, within the word) to the last '@'
	// that is followed by tcp(addr) or unix(addr) (with or without the '/'
	// that should follow: a DSN that fails to parse is printed too), or by
	// (addr)/ or by '/': "u:p@ss/w@tcp(h)/db" masks all of "p@ss/w".
	mysqlRE = regexp.MustCompile(`[^\s:@/'"()=]*:(\S*)@(?:(?:tcp[46]?|unix)\([^\s()]*\)|\([^\s()]*\)/|/)`)
)

// IsSecretKey reports whether a parameter, attribute or field named key is
// taken to hold a password (see [URL]).
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.Contains(k, "password") {
		return true
	}
	for _, suffix := range []string{"passwd", "passphrase", "pwd", "secret"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// findAll returns the password values in s, sorted and not overlapping.
func findAll(s string) []span {
	var out []span
	prev := 0
	for _, loc := range urlRE.FindAllStringIndex(s, -1) {
		start, end := loc[0], shortenURL(s, loc[0], loc[1])
		out = append(out, findInText(s, prev, start)...)
		out = append(out, findInURL(s, start, end)...)
		prev = end
	}
	out = append(out, findInText(s, prev, len(s))...)
	return merge(out)
}

// closers pairs an opening quote or bracket with its closing one.
var closers = map[byte]byte{'"': '"', '\'': '\'', '`': '`', '<': '>', '(': ')', '[': ']'}

// shortenURL returns the end of the URL that starts at s[start] and whose
// white-space-delimited token ends at end: when the URL follows an opening
// quote or bracket, it ends before the last matching closer in the token, so
// that `"postgres://u:p@h/db?password=x":` keeps its closing quote.
func shortenURL(s string, start, end int) int {
	if start == 0 {
		return end
	}
	c, ok := closers[s[start-1]]
	if !ok {
		return end
	}
	if i := strings.LastIndexByte(s[start:end], c); i >= 0 {
		return start + i
	}
	return end
}

// findInURL returns the password values in the URL s[start:end].
func findInURL(s string, start, end int) []span {
	u := s[start:end]
	rest := strings.Index(u, "://") + len("://")
	body := u[rest:]
	off := start + rest // offset of body in s

	var out []span
	authEnd := strings.IndexAny(body, "/?#")
	if authEnd < 0 {
		authEnd = len(body)
	}
	userEnd := strings.LastIndexByte(body[:authEnd], '@')
	if ambiguousUserinfo(u, body, authEnd) {
		// A password with an unencoded '/', '?' or '#' strands its '@'
		// after the authority: mask up to the last '@'.
		userEnd = strings.LastIndexByte(body, '@')
	}
	hostStart := 0
	if userEnd >= 0 {
		if colon := strings.IndexByte(body[:userEnd], ':'); colon >= 0 {
			out = append(out, span{off + colon + 1, off + userEnd, kindPercent})
		}
		hostStart = userEnd + 1
	}

	// Query parameters after the host part.
	q := strings.IndexByte(body[hostStart:], '?')
	if q < 0 {
		return out
	}
	pos := hostStart + q + 1
	for pos <= len(body) {
		next := strings.IndexAny(body[pos:], "&#")
		partEnd := len(body)
		if next >= 0 {
			partEnd = pos + next
		}
		part := body[pos:partEnd]
		if key, _, ok := strings.Cut(part, "="); ok {
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if IsSecretKey(key) {
				out = append(out, span{off + pos + strings.IndexByte(part, '=') + 1, off + partEnd, kindPercent})
			}
		}
		if next < 0 || body[partEnd] == '#' {
			break
		}
		pos = partEnd + 1
	}
	return out
}

// ambiguousUserinfo reports whether the URL u, whose part after "://" is body
// with its authority ending at authEnd, has an '@' after its authority that
// can only be the end of a userinfo: the URL does not parse, or the '@' is in
// its path, its fragment or a query part that is not key=value.
func ambiguousUserinfo(u, body string, authEnd int) bool {
	if !strings.Contains(body[authEnd:], "@") {
		return false
	}
	if !strings.Contains(body[:strings.LastIndexByte(body, '@')], ":") {
		return false // no password to protect
	}
	p, err := url.Parse(u)
	if err != nil {
		return true
	}
	if strings.Contains(p.EscapedPath(), "@") || strings.Contains(p.RawFragment+p.Fragment, "@") {
		return true
	}
	for _, part := range strings.Split(p.RawQuery, "&") {
		at := strings.IndexByte(part, '@')
		if at >= 0 && !strings.Contains(part[:at], "=") {
			return true
		}
	}
	return false
}

// findInText returns the password values in s[start:end], a stretch of text
// that holds no URL.
func findInText(s string, start, end int) []span {
	if start >= end {
		return nil
	}
	t := s[start:end]
	var out []span
	for _, loc := range keyValueRE.FindAllStringIndex(t, -1) {
		// The key must start a word and be a password's name.
		if loc[0] > 0 && isWordByte(t[loc[0]-1]) {
			continue
		}
		key := strings.TrimRight(t[loc[0]:loc[1]], " \t\n\r\v\f=")
		if !IsSecretKey(key) {
			continue
		}
		out = append(out, valueAt(t, loc[1], start))
	}
	for _, loc := range jsonRE.FindAllStringIndex(t, -1) {
		// loc[1] is just past the opening quote of the value.
		out = append(out, quotedValue(t, loc[1]-1, '"', kindDoubleQuote, start))
	}
	out = append(out, findSQLPasswords(t, start)...)
	for _, loc := range mysqlRE.FindAllStringSubmatchIndex(t, -1) {
		out = append(out, span{start + loc[2], start + loc[3], kindRaw})
	}
	return out
}

// valueAt returns the value starting at t[i]: quoted up to its closing quote,
// else up to the next white space. base is t's offset in the whole text.
func valueAt(t string, i, base int) span {
	if i < len(t) && (t[i] == '\'' || t[i] == '"') {
		kind := kindLibpqQuote
		if t[i] == '"' {
			kind = kindDoubleQuote
		}
		return quotedValue(t, i, t[i], kind, base)
	}
	end := strings.IndexFunc(t[i:], isSpace)
	if end < 0 {
		end = len(t) - i
	}
	return span{base + i, base + i + end, kindRaw}
}

// quotedValue returns the quoted value whose opening quote is t[i], quotes
// included. Backslash escapes the next byte. An unterminated value runs to the
// end of t.
func quotedValue(t string, i int, quote byte, kind valueKind, base int) span {
	j := i + 1
	for j < len(t) {
		switch t[j] {
		case '\\':
			j += 2
			continue
		case quote:
			return span{base + i, base + j + 1, kind}
		}
		j++
	}
	return span{base + i, base + len(t), kind}
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// merge sorts spans and joins those that overlap or touch.
func merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			if sp.end > last.end {
				last.end = sp.end
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// apply replaces each span of s with Mask. Quoted values keep their quotes so
// that the result still parses: password='xxxxx'.
func apply(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range spans {
		if sp.end <= sp.start {
			continue // empty value: nothing to hide
		}
		b.WriteString(s[prev:sp.start])
		switch sp.kind {
		case kindLibpqQuote:
			b.WriteString("'" + Mask + "'")
		case kindDoubleQuote:
			b.WriteString(`"` + Mask + `"`)
		default:
			b.WriteString(Mask)
		}
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// sqlPasswordRE finds the password literals of SQL text (a migration's
// statement in plan output or in an error), each masked like any password:
// PostgreSQL's PASSWORD 'secret' (CREATE/ALTER ROLE or USER) and MySQL's
// IDENTIFIED [WITH plugin] BY 'secret', PASSWORD('secret') and
// SET PASSWORD [FOR user] = 'secret'. Each match ends at the literal's
// opening quote.
var sqlPasswordRE = regexp.MustCompile(`(?i)\bpassword\s*\(?\s*'|\bidentified\s+(?:with\s+[^\s;']+\s+)?by\s+'|\bset\s+password\b[^=;]*=\s*'`)

// findSQLPasswords returns the 'literal's after PASSWORD in t, quotes
// included. A quote written twice is part of the literal, as in SQL; an
// unterminated literal runs to the end of t.
func findSQLPasswords(t string, base int) []span {
	var out []span
	for _, loc := range sqlPasswordRE.FindAllStringIndex(t, -1) {
		i := loc[1] - 1 // the opening quote
		j := i + 1
		for j < len(t) {
			if t[j] == '\'' {
				if j+1 < len(t) && t[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			j++
		}
		end := min(j+1, len(t))
		out = append(out, span{base + i, base + end, kindLibpqQuote})
	}
	return out
}
