package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/joho/godotenv"

	"github.com/shiplock/shiplock/dialect"
)

// setting is one resolved value and where it came from ("--table",
// "SHIPLOCK_TABLE", "GOOSE_TABLE in .env", "default").
type setting struct {
	value, source string
}

// gooseVars are the variables shiplock reads from goose's environment and
// its .env file; nothing else in that file is read.
var gooseVars = []string{"GOOSE_DRIVER", "GOOSE_DBSTRING", "GOOSE_MIGRATION_DIR", "GOOSE_TABLE"}

// defaultEnvFile is the file goose's CLI loads when -env is not given.
const defaultEnvFile = ".env"

// loadEnvFile reads goose's variables from the file --env names, as goose's
// CLI does: by default .env, best effort (a missing or unreadable default
// file is no error, as goose ignores it); "none" reads nothing; any other
// file must exist and parse. It returns the variables and the file read
// ("" when none).
func (g *globals) loadEnvFile() (map[string]string, string, error) {
	name := g.envFile
	switch name {
	case "none":
		return nil, "", nil
	case "":
		vars, err := godotenv.Read(defaultEnvFile)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				g.envFileErr = err
			}
			return nil, "", nil
		}
		return pick(vars), defaultEnvFile, nil
	}
	vars, err := godotenv.Read(name)
	if err != nil {
		var perr *fs.PathError
		if errors.As(err, &perr) {
			err = perr.Err
		}
		return nil, "", usagef(fmt.Sprintf("--env %s: %v", name, err))
	}
	return pick(vars), name, nil
}

func pick(vars map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range gooseVars {
		if v, ok := vars[k]; ok {
			out[k] = v
		}
	}
	return out
}

// resolveSettings applies the precedence: shiplock's flags, shiplock's
// variables (DATABASE_URL, SHIPLOCK_*), goose's variables (GOOSE_*), the
// .env file, defaults. The database itself is resolved later, by
// resolveTarget, from g.set.database and g.set.driver.
func (g *globals) resolveSettings() error {
	dotenv, file, err := g.loadEnvFile()
	if err != nil {
		return err
	}
	g.set.envFile = file
	first := func(flag, flagValue string, names ...string) setting {
		if flagValue != "" {
			return setting{flagValue, "--" + flag}
		}
		for _, n := range names {
			if v := g.streams.getenv(n); v != "" {
				return setting{v, n}
			}
		}
		for _, n := range names {
			if v := dotenv[n]; v != "" {
				return setting{v, n + " in " + file}
			}
		}
		return setting{}
	}
	g.set.dir = first("dir", g.dir, "SHIPLOCK_DIR", "GOOSE_MIGRATION_DIR")
	if g.set.dir.value == "" {
		g.set.dir = setting{"migrations", "default"}
	}
	g.dir = g.set.dir.value

	g.set.table = first("table", g.tableName, "SHIPLOCK_TABLE", "GOOSE_TABLE")
	if g.set.table.value == "" {
		g.set.table = setting{dialect.DefaultTable, "default"}
	}
	if g.table, err = dialect.ParseTable(g.set.table.value); err != nil {
		return usagef(fmt.Sprintf("%s: %v", g.set.table.source, err))
	}

	// DATABASE_URL is shiplock's; GOOSE_DRIVER describes GOOSE_DBSTRING.
	g.set.database = first("database-url", g.databaseURL, "DATABASE_URL")
	switch {
	case g.driver != "":
		g.set.driver = setting{g.driver, "goose's DRIVER argument"}
	case g.set.database.value == "":
		g.set.database = first("", "", "GOOSE_DBSTRING")
		g.set.driver = first("", "", "GOOSE_DRIVER")
	}
	g.sec.AddDSN(g.set.database.value)
	g.sec.AddDSN(dotenv["GOOSE_DBSTRING"])
	return nil
}

// dbDriver is the dialect the database setting is read as: goose's DRIVER
// argument (--driver, with --database-url), else GOOSE_DRIVER (with
// GOOSE_DBSTRING), else "" (by the setting's form).
func (g *globals) dbDriver() (string, error) {
	if g.driver != "" {
		switch g.driver {
		case "postgres", "mysql", "sqlite":
			return g.driver, nil
		}
		return "", usagef(fmt.Sprintf("--driver %q: want postgres, mysql or sqlite", g.driver))
	}
	d := g.set.driver
	if d.value == "" {
		return "", nil
	}
	if name := gooseDrivers[strings.ToLower(d.value)]; name != "" {
		return name, nil
	}
	return "", usagef(fmt.Sprintf("%s %q is not supported: shiplock migrates PostgreSQL, MySQL/MariaDB and SQLite (GOOSE_DRIVER postgres, pgx, mysql, sqlite3 or sqlite)", d.source, d.value))
}

// settings are the resolved goose-compatible settings, with their sources.
type settings struct {
	driver, database, dir, table setting
	envFile                      string // the file read, "" for none
}
