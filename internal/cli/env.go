package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newEnvCmd(g *globals) *cobra.Command {
	output := "table"
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Show the resolved settings and where each came from, as goose env does (passwords redacted)",
		Long: `env prints the database, driver, migrations directory and version table
shiplock would use, each with its source: a flag, shiplock's variables
(DATABASE_URL, SHIPLOCK_*), goose's (GOOSE_*), the --env file (default .env)
or the default. It opens no connection. Passwords are never printed.

MySQL and MariaDB: the database is a mysql:// URL or go-sql-driver's DSN
(USER@tcp(HOST:3306)/DB, the password after USER:); when it names no password, MYSQL_PWD is
the password, and when it names no user, MYSQL_USER is the user.
MYSQL_HOST and MYSQL_TCP_PORT are not read: the string names the server.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return g.printEnv(output) },
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// envRow is one resolved setting as env prints it.
type envRow struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func (g *globals) printEnv(output string) error {
	if output != "table" && output != "json" {
		return usagef(fmt.Sprintf("--output %q: want table or json", output))
	}
	rows := g.envRows()
	for i := range rows {
		rows[i].Value, rows[i].Source = g.redact(rows[i].Value), g.redact(rows[i].Source)
	}
	if output == "json" {
		writeJSON(g.streams.Out, rows)
		return nil
	}
	w := tabwriter.NewWriter(g.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SETTING\tVALUE\tSOURCE")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Name, r.Value, r.Source)
	}
	return w.Flush()
}

func (g *globals) envRows() []envRow {
	row := func(name string, s setting) envRow {
		if s.source == "" {
			s.source = "not set"
		}
		return envRow{name, s.value, s.source}
	}
	driver, database := g.set.driver, g.set.database
	// An error is shown on the row it is about: the driver's own, else
	// the database string's.
	errorOn := func(s *setting, err error) {
		if s.source == "" {
			*s = setting{"", "error: " + err.Error()}
		} else {
			s.source += " (error: " + err.Error() + ")"
		}
	}
	_, driverErr := g.dbDriver()
	switch t, err := g.resolveTarget(); {
	case driverErr != nil:
		errorOn(&driver, driverErr)
	case err != nil:
		errorOn(&database, err)
	default:
		if driver.value == "" {
			driver = setting{t.dialect, "from the database setting"}
		}
		if database.value == "" && t.pg != nil {
			// The PG* variables alone: what pgx read from them.
			database = setting{fmt.Sprintf("host=%s port=%d user=%s dbname=%s", t.pg.Host, t.pg.Port, t.pg.User, t.pg.Database),
				"PG* variables (libpq)"}
		}
		var from []string
		if t.myUser != "" {
			from = append(from, "user from "+t.myUser)
		}
		if t.myPassword != "" {
			from = append(from, "password from "+t.myPassword)
		}
		if len(from) > 0 {
			database.source += " (" + strings.Join(from, ", ") + ")"
		}
	}
	envFile := setting{g.set.envFile, "--env"}
	switch {
	case g.envFile == "none":
		envFile = setting{"", "--env none"}
	case g.envFile == "" && g.set.envFile == "" && g.envFileErr != nil:
		envFile = setting{defaultEnvFile, "ignored, as goose does: it cannot be read: " + g.envFileErr.Error()}
	case g.envFile == "" && g.set.envFile == "":
		envFile = setting{"", "no " + defaultEnvFile + " here"}
	case g.envFile == "":
		envFile.source = "default"
	}
	_, records := g.table.Names()
	return []envRow{
		row("driver", driver),
		row("dbstring", database),
		row("dir", g.set.dir),
		row("table", g.set.table),
		{"records", records, "shiplock's own table, beside " + g.table.String()},
		row("env-file", envFile),
	}
}
