package cli

import (
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Global flags are registered once, on the root, so every command accepts
// them; each command's help shows only those it reads.
var (
	dbCommands = []string{"up", "down", "redo", "status", "version", "plan", "verify", "repair", "wait", "await", "check"}
	// fileCommands read the migrations directory.
	fileCommands = []string{"up", "down", "redo", "status", "version", "plan", "verify", "repair", "validate", "fix", "await", "check"}
)

// globalFlagUsers lists, for each global flag, the commands (paths below
// "shiplock") that read it. A global flag missing here is shown on every
// command, and TestHelpListsOnlyUsedFlags fails until it is added.
var globalFlagUsers = map[string][]string{
	"database-url": append(slicesClone(dbCommands), "kube job", "kube inject", "kube run", "env"),
	"driver":       dbCommands,
	"certfile":     dbCommands,
	"ssl-cert":     dbCommands,
	"ssl-key":      dbCommands,
	"dir":          append(slicesClone(fileCommands), "create"),
	"allow-empty":  fileCommands,
	"log-format":   append(slicesClone(dbCommands), "kube run"),
	"log-level":    append(slicesClone(dbCommands), "kube run"),
	// The version table: every command that reads goose's table, and the
	// manifests, which render it; env shows it.
	"table": {"up", "down", "redo", "status", "version", "plan", "verify", "repair", "await", "check", "kube job", "kube inject", "kube run", "env"},
	// --env feeds the database, the directory and the table.
	"env": append(append(slicesClone(dbCommands), fileCommands...), "create", "kube job", "kube inject", "kube run", "env"),
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// usesGlobal reports whether cmd reads global flag name; true for a flag
// globalFlagUsers does not know.
func usesGlobal(cmd *cobra.Command, name string) bool {
	users, ok := globalFlagUsers[name]
	if !ok {
		return true
	}
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	for _, u := range users {
		if u == path {
			return true
		}
	}
	return false
}

// usedGlobalFlags are the global flags cmd's help shows.
func usedGlobalFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && usesGlobal(cmd, f.Name) {
			fs.AddFlag(f)
		}
	})
	return fs
}

// envOrder is the order of flagEnv in help.
var envOrder = []string{"database-url", "certfile", "dir", "table", "env", "termination-log", "linkerd-admin-port", "istio-status-port", "kubeconfig"}

// flagEnv are the environment variables behind a flag, for the help of the
// commands that show the flag. The kube commands render --database-url
// into a manifest and never read the connection from this environment.
var flagEnv = map[string]string{
	"database-url": `  DATABASE_URL      database: postgres://..., mysql://..., USER@tcp(HOST:3306)/DB
                    (go-sql-driver's DSN), sqlite://PATH or a file path
  PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE PGSERVICE PGPASSFILE ...
                    libpq's settings, read by pgx as libpq reads them
                    (DATABASE_URL's values win)
  PGREQUIREAUTH     accepted authentication methods, e.g. scram-sha-256: never
                    send the password in the clear to a server without TLS
  PGDBNAME          alias of PGDATABASE (manifests written for nc + goose)
  MYSQL_PWD         MySQL's password when the URL or DSN names none (the mysql
                    client's variable); MYSQL_USER, its user when it names none
  GOOSE_DBSTRING GOOSE_DRIVER  goose's, when DATABASE_URL is not set
`,
	"certfile":           "  PGSSLROOTCERT PGSSLCERT PGSSLKEY  what --certfile, --ssl-cert and --ssl-key set\n                    (PostgreSQL; on MySQL the flags are goose's TLS settings)\n",
	"dir":                "  SHIPLOCK_DIR      migrations directory (default ./migrations); then goose's GOOSE_MIGRATION_DIR\n",
	"table":              "  SHIPLOCK_TABLE    goose's version table (default goose_db_version); then goose's GOOSE_TABLE\n",
	"env":                "  .env              goose's GOOSE_* variables, read from --env FILE (default .env): below\n                    flags, DATABASE_URL, SHIPLOCK_* and the GOOSE_* environment\n",
	"termination-log":    "  SHIPLOCK_TERMINATION_LOG  the termination log's path\n",
	"linkerd-admin-port": "  SHIPLOCK_LINKERD_ADMIN_PORT  the Linkerd proxy's admin port\n",
	"istio-status-port":  "  SHIPLOCK_ISTIO_STATUS_PORT   Istio's status port\n",
	"kubeconfig":         "  KUBECONFIG        the kubeconfig files, as kubectl reads them\n",
}

// commandEnv is the "Environment:" section of cmd's help: the variables
// behind the flags it shows, in a stable order.
func commandEnv(cmd *cobra.Command) string {
	seen := map[string]bool{}
	add := func(f *pflag.Flag) { seen[f.Name] = !f.Hidden }
	cmd.LocalFlags().VisitAll(add)
	if cmd.HasParent() {
		usedGlobalFlags(cmd).VisitAll(add)
	}
	if strings.HasPrefix(cmd.CommandPath(), cmd.Root().Name()+" kube") {
		seen["database-url"] = false
	}
	var b strings.Builder
	for _, n := range envOrder {
		if seen[n] {
			b.WriteString(flagEnv[n])
		}
	}
	if seen["dir"] && cmd.Name() != "create" {
		b.WriteString("  (any)             a migration with -- +goose ENVSUB ON expands ${NAME}\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// examples are each command's examples, by path below "shiplock".
var examples = map[string]string{
	"up": `  shiplock up                              # apply everything pending
  shiplock up --to 20261126120000          # up to and including this version
  shiplock up --by-one -o json
  shiplock postgres "$DATABASE_URL" up -dir=db/migrations   # goose's spelling
  shiplock mysql "app@tcp(db:3306)/accounts" up              # goose's, MySQL (MYSQL_PWD)`,
	"down": `  shiplock down                            # revert the newest migration
  shiplock down --to 20261101000000        # revert everything newer (idempotent)
  shiplock down --to 0                     # revert all (goose's reset)`,
	"redo":     `  shiplock redo --dir db/migrations`,
	"status":   "  shiplock status\n  shiplock status -o json --exit-code      # exit 8 when something is pending\n  shiplock status -o goose 2>&1 | grep Pending",
	"version":  `  shiplock version`,
	"plan":     "  shiplock plan                            # what up would run\n  shiplock plan --down --to 20261101000000\n  shiplock plan --locks --shadow-url \"$SCRATCH_URL\" --fail-on 'ACCESS EXCLUSIVE=100000'",
	"lint":     "  shiplock lint --since 20261101000000     # files up to this version are applied\n  shiplock lint --git-base origin/main -o github\n  shiplock lint --database-url \"$DATABASE_URL\" --fail-on warning",
	"verify":   "  shiplock verify -o json",
	"validate": "  shiplock validate --dir db/migrations",
	"create":   "  shiplock create add_email_index          # 20261126120000_add_email_index.sql\n  shiplock create -s add_email_index       # 00004_add_email_index.sql",
	"fix":      "  shiplock fix --dir db/migrations",
	"repair":   "  shiplock repair --resume\n  shiplock repair --accept-checksum 20261126120000",
	"wait":     "  shiplock wait --wait-timeout 5m && ./app",
	"await":    "  shiplock await --timeout 10m             # the gate initContainer",
	"check":    "  shiplock check --version 20261126120000  # an exec readiness probe",
	"env":      "  shiplock env                             # what shiplock would use, and from where\n  shiplock env --env deploy/goose.env -o json",
	"kube":     "  shiplock kube job --image registry.example.com/app-migrations --tag v2 --secret db -- up",
}

// helpTemplate is cobra's usage template with the global flags a command
// reads instead of all of them, and its environment variables.
func helpTemplate(def string) string {
	def = strings.Replace(def, "{{if .HasAvailableInheritedFlags}}", "{{if (usedGlobalFlags .).HasAvailableFlags}}", 1)
	def = strings.Replace(def, "{{.InheritedFlags.FlagUsages", "{{(usedGlobalFlags .).FlagUsages", 1)
	return def + "{{with commandEnv .}}\nEnvironment:\n{{.}}\n{{end}}"
}

// templateFuncs registers the help template's functions in cobra's one
// global map, once: Main may run on many goroutines at once (shiplockmain.Run
// in a program, the tests' racing runners), and a second write of that map
// while another Main reads or writes it crashes the process.
var templateFuncs sync.Once

// setupHelp gives every command its examples and the help template.
func setupHelp(root *cobra.Command) {
	templateFuncs.Do(func() {
		cobra.AddTemplateFunc("usedGlobalFlags", usedGlobalFlags)
		cobra.AddTemplateFunc("commandEnv", commandEnv)
	})
	root.SetUsageTemplate(helpTemplate(root.UsageTemplate()))
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if c.Example == "" {
			c.Example = examples[path]
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
