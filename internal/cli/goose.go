package cli

import (
	"fmt"
	"io"
	"log"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/migrate"
)

// gooseArgs rewrites goose's command-line spelling into shiplock's, so a
// goose user's habits work unchanged:
//
//   - a single-dash long flag (-dir=x, -dir x, -allow-missing, -table, ...)
//     becomes the double-dash flag of that name, for every long flag some
//     shiplock command registers; -v (goose's verbose) is --log-level=debug
//     and -no-color is dropped (shiplock prints no colour);
//   - goose's positional form "DRIVER DBSTRING COMMAND" becomes
//     "--database-url DBSTRING COMMAND", the driver saying how to read the
//     string (postgres: a URL or key=value string; sqlite3: a file);
//   - goose's commands up-by-one, up-to V, down-to V and reset become
//     up --by-one, up --to V, down --to V and down --to 0; init gets a hint.
//
// Everything after "--" (the shiplock arguments kube job and kube run pass
// to the container) is left alone. A goose spelling that cannot work (a
// driver shiplock does not run, up-to without a version) is a usage error
// that says what to type instead.
func gooseArgs(root *cobra.Command, args []string) ([]string, error) {
	flags := longFlags(root)
	var (
		out         []string
		positionals []int // indexes in out of the positional arguments
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		switch {
		case a == "-v" || a == "-v=true" || a == "--v":
			out = append(out, "--log-level=debug")
			continue
		case a == "-no-color" || a == "--no-color" || a == "-no-color=true" || a == "--no-color=true":
			continue
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 2 {
			name, _, _ := strings.Cut(a[1:], "=")
			if _, ok := flags[name]; ok {
				a = "-" + a
			}
		}
		out = append(out, a)
		if !strings.HasPrefix(a, "-") || a == "-" {
			positionals = append(positionals, len(out)-1)
			continue
		}
		// A flag that takes a value as the next argument: skip that value,
		// whatever it looks like.
		if takesNext(root, flags, a) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	if len(positionals) == 0 {
		return out, nil
	}
	first := positionals[0]
	if dialect, ok := gooseDrivers[out[first]]; ok {
		if len(positionals) < 3 {
			return nil, usagef(fmt.Sprintf("goose's form is DRIVER DBSTRING COMMAND: %q needs a connection string and a command, e.g. shiplock %s \"$DATABASE_URL\" status (or shiplock status --database-url ...)", out[first], out[first]))
		}
		if dialect == "" {
			return nil, usagef(fmt.Sprintf("goose driver %q is not supported: shiplock runs PostgreSQL (postgres, pgx), MySQL and MariaDB (mysql) and SQLite (sqlite3, sqlite)", out[first]))
		}
		db := out[positionals[1]]
		rest := make([]string, 0, len(out)+1)
		for i, a := range out {
			if i != first && i != positionals[1] {
				rest = append(rest, a)
			}
		}
		out = append([]string{"--database-url=" + db, "--driver=" + dialect}, rest...)
		// The two flags in front make up for the two removed before them.
		positionals = positionals[2:]
	}
	cmdAt := positionals[0]
	var rewrite []string
	switch out[cmdAt] {
	case "up-by-one":
		rewrite = []string{"up", "--by-one"}
	case "reset":
		rewrite = []string{"down", "--to=0"}
	case "up-to", "down-to":
		verb := strings.TrimSuffix(out[cmdAt], "-to")
		if len(positionals) < 2 {
			return nil, usagef(fmt.Sprintf("%s needs a VERSION: shiplock %s --to VERSION", out[cmdAt], verb))
		}
		v := positionals[1]
		rewrite = []string{verb, "--to=" + out[v]}
		out = append(out[:v], out[v+1:]...)
	case "init":
		return nil, usagef(`goose init has no shiplock equivalent: create the directory and run "shiplock create NAME" (shiplock's default --dir is ./migrations)`)
	}
	if rewrite != nil {
		out = append(out[:cmdAt], append(rewrite, out[cmdAt+1:]...)...)
	}
	// goose takes its flags before the command too: put the command first,
	// or cobra would read it as the value of a flag only the command
	// knows ("-allow-missing up", "-s create").
	if c, _, err := root.Find(out[cmdAt : cmdAt+1]); cmdAt > 0 && err == nil && c != root {
		out = append([]string{out[cmdAt]}, append(out[:cmdAt:cmdAt], out[cmdAt+1:]...)...)
	}
	return out, nil
}

// gooseDrivers are goose's driver names, with the dialect shiplock reads
// their connection string as ("" when shiplock does not run that database).
var gooseDrivers = map[string]string{
	"postgres": "postgres", "pgx": "postgres",
	"sqlite3": "sqlite", "sqlite": "sqlite",
	"mysql":    "mysql",
	"redshift": "", "tidb": "", "mssql": "", "azuresql": "", "clickhouse": "",
	"clickhouse-replicated": "", "vertica": "", "ydb": "", "turso": "", "starrocks": "", "spanner": "",
}

// longFlags maps every long flag name of root and its subcommands to one
// of its definitions.
func longFlags(root *cobra.Command) map[string]*pflag.Flag {
	m := map[string]*pflag.Flag{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if _, ok := m[f.Name]; !ok {
				m[f.Name] = f
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return m
}

// takesNext reports whether flag argument a ("--dir", "-o") is a flag
// whose value is the next argument.
func takesNext(root *cobra.Command, flags map[string]*pflag.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	var f *pflag.Flag
	if strings.HasPrefix(a, "--") {
		f = flags[a[2:]]
	} else if len(a) == 2 {
		var find func(*cobra.Command)
		find = func(c *cobra.Command) {
			if f == nil {
				f = c.Flags().ShorthandLookup(a[1:])
			}
			for _, s := range c.Commands() {
				find(s)
			}
		}
		find(root)
	}
	return f != nil && f.NoOptDefVal == ""
}

// unknownCommand is the root command run with arguments: no command has
// that name (exit 2, as for any bad argument), with cobra's suggestions.
// Without arguments it prints the help.
func unknownCommand(root *cobra.Command, args []string) error {
	if len(args) == 0 {
		return root.Help()
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if root.SuggestionsMinimumDistance <= 0 {
		root.SuggestionsMinimumDistance = 2 // cobra's default, set only where it suggests itself
	}
	if s := root.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return usagef(msg + `; see "shiplock --help"`)
}

// usageArgs makes every command's argument check a usage error (exit 2):
// cobra's own errors ("unknown command \"x\" for \"shiplock up\"") are
// plain errors, which would exit 1.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usagef(err.Error())
			}
			return nil
		}
	}
	for _, s := range c.Commands() {
		usageArgs(s)
	}
}

// registerNoVersioning adds goose's -no-versioning to up, down and redo.
func registerNoVersioning(fs *pflag.FlagSet, p *bool) {
	fs.BoolVar(p, "no-versioning", false, "goose's -no-versioning: run the files by their order alone, never reading or writing goose_db_version or shiplock_versions (nothing records what ran; the migration lock is still taken)")
}

func checkNoVersioning(on bool, f *runFlags) error {
	if on && f.engine.txMode == "all" {
		return usagef("--no-versioning runs each file on its own (as goose does): use --tx-mode file or none")
	}
	return nil
}

// tlsFiles are goose's -certfile, -ssl-cert and -ssl-key. goose hands them
// to MySQL only (a TLS configuration registered with the driver); shiplock
// does the same for MySQL, and gives them to PostgreSQL as libpq's
// sslrootcert, sslcert and sslkey, over what the URL or PGSSLROOTCERT,
// PGSSLCERT and PGSSLKEY say.
type tlsFiles struct{ rootCert, cert, key string }

func (t *tlsFiles) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.rootCert, "certfile", "", "goose's -certfile: the CA certificates (PEM) that verify the server; MySQL: TLS verified with them, as goose does; PostgreSQL: sslrootcert (same as PGSSLROOTCERT or sslrootcert= in --database-url)")
	fs.StringVar(&t.cert, "ssl-cert", "", "goose's -ssl-cert: the client certificate (PEM); PostgreSQL's sslcert (same as PGSSLCERT or sslcert= in --database-url)")
	fs.StringVar(&t.key, "ssl-key", "", "goose's -ssl-key: the client certificate's key (PEM); PostgreSQL's sslkey (same as PGSSLKEY or sslkey= in --database-url)")
}

func (t tlsFiles) set() bool { return t.rootCert != "" || t.cert != "" || t.key != "" }

// apply adds the files to a PostgreSQL connection string (a URL, a
// key=value string, or "" for the environment alone); they win over the
// string's own.
func (t tlsFiles) apply(conn string) string {
	params := [][2]string{{"sslrootcert", t.rootCert}, {"sslcert", t.cert}, {"sslkey", t.key}}
	if strings.Contains(conn, "://") {
		base, query, _ := strings.Cut(conn, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return conn // pgx reports the bad query
		}
		for _, p := range params {
			if p[1] != "" {
				q.Set(p[0], p[1])
			}
		}
		return base + "?" + q.Encode()
	}
	for _, p := range params {
		if p[1] != "" {
			// A later key wins in a key=value string.
			conn = strings.TrimSpace(conn + " " + p[0] + "=" + quoteConnValue(p[1]))
		}
	}
	return conn
}

// gooseRows are the rows of goose v3's status for st: one per migration
// file, "Applied At" in time.ANSIC as the driver returned it, or
// "Pending". Versions with no file are not listed, as in goose.
func gooseRows(st *migrate.Status) [][2]string {
	var rows [][2]string
	for _, v := range st.Versions {
		at := "Pending"
		switch v.State {
		case migrate.Ahead:
			continue
		case migrate.Applied:
			at = v.AppliedAt.Format(time.ANSIC)
		}
		rows = append(rows, [2]string{at, filepath.Base(v.Source)})
	}
	return rows
}

// printGooseStatus prints rows (applied at, file) as goose v3's status
// command does: through Go's standard logger (a date and time before each
// line) on stderr. Unlike goose, shiplock does not create goose_db_version
// to read it: status stays read-only.
func printGooseStatus(w io.Writer, rows [][2]string) {
	l := log.New(w, "", log.LstdFlags)
	l.Printf("    Applied At                  Migration")
	l.Printf("    =======================================")
	for _, r := range rows {
		l.Printf("    %-24s -- %v", r[0], r[1])
	}
}

// runUnversioned is status --no-versioning: the files alone, as goose's
// status -no-versioning lists them, reading no database.
func (f *statusFlags) runUnversioned(g *globals) error {
	if f.output == "json" || f.exitCode {
		return usagef("status --no-versioning reads no database: use -o table or -o goose, without --exit-code")
	}
	migs, err := g.loadMigrations()
	if err != nil {
		return err
	}
	if f.output == "goose" {
		var rows [][2]string
		for _, m := range migs {
			rows = append(rows, [2]string{"no versioning", filepath.Base(m.Source)})
		}
		printGooseStatus(g.streams.Err, rows)
		return nil
	}
	w := tabwriter.NewWriter(g.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tSTATE\tFILE")
	for _, m := range migs {
		fmt.Fprintf(w, "%d\tno versioning\t%s\n", m.Version, m.Source)
	}
	return w.Flush()
}
