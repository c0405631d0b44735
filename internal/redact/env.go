package redact

import (
	"net/url"
	"strings"
)

// IsSecretEnvName reports whether an environment variable named name is
// taken to hold a secret, so that its value, when a migration file expands
// it (goose's ENVSUB), is masked wherever it later appears: plan output,
// errors quoting the statement, logs and the termination message.
//
// The name is split into parts at '_', '-' and '.', and compared
// case-insensitively. It is a secret when:
//
//   - it contains "password", "passwd", "passphrase", "secret", "token",
//     "credential" or "apikey" anywhere (PGPASSWORD, APP_DB_PASSWORD,
//     GITHUB_TOKEN, CLIENT_SECRET, AWS_CREDENTIALS);
//   - a part is "pass", "pwd", "pw", "auth" or "private" (DB_PASS, DB_PWD,
//     PRIVATE_KEY_PEM);
//   - its last part is "key" or "keys" (API_KEY, ENCRYPTION_KEY, KEY),
//     but not when "key" only starts a name (KEY_COLUMN).
//
// PWD and OLDPWD, the shell's working directories, are not secrets: masking
// a path would hide every file name printed under it.
func IsSecretEnvName(name string) bool {
	n := strings.ToLower(name)
	if n == "pwd" || n == "oldpwd" {
		return false
	}
	for _, w := range []string{"password", "passwd", "passphrase", "secret", "token", "credential", "apikey"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	parts := strings.FieldsFunc(n, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	for _, p := range parts {
		switch p {
		case "pass", "pwd", "pw", "auth", "private":
			return true
		}
	}
	if len(parts) > 0 {
		switch parts[len(parts)-1] {
		case "key", "keys":
			return true
		}
	}
	return false
}

// URLPasswordNeedsEncoding reports whether the connection URL u holds a
// password that was not percent-encoded and so cannot be read back
// reliably: an unencoded '@', '/', '?' or '#' (the URL then parses with a
// different host, which may be printed, or not at all), a '%' that starts no valid escape, or
// white space. It never returns the password itself, so a caller can
// explain what to do without printing it.
func URLPasswordNeedsEncoding(u string) bool {
	i := strings.Index(u, "://")
	if i < 0 {
		return false
	}
	body := u[i+len("://"):]
	authEnd := strings.IndexAny(body, "/?#")
	if authEnd < 0 {
		authEnd = len(body)
	}
	// Two '@' in the authority: Go's URL parser refuses it, pgx's takes
	// the part after the first as the host, and prints it.
	if ambiguousUserinfo(u, body, authEnd) || strings.Count(body[:authEnd], "@") > 1 {
		return true
	}
	at := strings.LastIndexByte(body[:authEnd], '@')
	if at < 0 {
		return false
	}
	_, pw, ok := strings.Cut(body[:at], ":")
	if !ok {
		return false
	}
	if strings.ContainsAny(pw, " \t\r\n") {
		return true
	}
	_, err := url.PathUnescape(pw)
	return err != nil
}
