package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/migrate"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Parse every migration file and report errors; no database needed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			migs, err := g.loadMigrations()
			if err != nil {
				return err
			}
			for _, m := range migs {
				switch {
				case m.Kind != migrate.KindGoUnregistered:
				case g.streams.GoMigrations != nil:
					fmt.Fprintf(g.streams.Out, "note: %s is a Go migration not registered with goose (goose.AddMigrationContext in an init of a package your main imports)\n", m.Source)
				default:
					fmt.Fprintf(g.streams.Out, "note: %s is a Go migration not compiled into this binary: build your own shiplock with it (README, \"Go migrations\") or run it through the migrate library in your application\n", m.Source)
				}
				for _, d := range []migrate.Direction{migrate.Up, migrate.Down} {
					if line := m.InvalidUTF8Line(d); line > 0 {
						fmt.Fprintf(g.streams.Out, "note: %s:%d: %s statement text is not valid UTF-8: a database whose client_encoding is UTF8 refuses it before anything runs; LATIN1 or SQL_ASCII take it\n", filepath.Join(g.dir, m.Source), line, d)
					}
				}
			}
			fmt.Fprintf(g.streams.Out, "ok: %s in %s\n", plural(len(migs), "migration"), g.dir)
			return nil
		},
	}
}

type createFlags struct{ sequential bool }

const sqlTemplate = `-- +goose Up
-- +goose StatementBegin
SELECT 'up SQL query';
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
SELECT 'down SQL query';
-- +goose StatementEnd
`

// goTemplate is goose create's (v3.30.0), so that the migration registers
// in goose's registry, which goosemigrations hands to shiplock (README,
// "Go migrations"), and goose itself runs the same file.
const goTemplate = `package migrations

import (
	"context"
	"database/sql"
	"github.com/pressly/goose/v3"
)

func init() {
	goose.AddMigrationContext(up{{NAME}}, down{{NAME}})
}

func up{{NAME}}(ctx context.Context, tx *sql.Tx) error {
	// This code is executed when the migration is applied.
	return nil
}

func down{{NAME}}(ctx context.Context, tx *sql.Tx) error {
	// This code is executed when the migration is rolled back.
	return nil
}
`

func newCreateCmd(g *globals) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create NAME [sql|go]",
		Short: "Create a new migration file (timestamp version, or --sequential)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := "sql"
			if len(args) == 2 {
				kind = args[1]
			}
			return f.run(g, args[0], kind, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&f.sequential, "sequential", "s", false, "number the file 00001, 00002, ... instead of a UTC timestamp")
	return cmd
}

func (f *createFlags) run(g *globals, name, kind string, now time.Time) error {
	if kind != "sql" && kind != "go" {
		return usagef(fmt.Sprintf("migration type %q: want sql or go", kind))
	}
	rawName := name
	name = snakeCase(name)
	if name == "" {
		return usagef("migration name must hold a letter or digit")
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	unlock, err := lockDir(g.dir)
	if err != nil {
		return err
	}
	defer unlock()
	var (
		version, file, path string
		fh                  *os.File
	)
	for attempt := 0; ; attempt++ {
		taken, err := takenVersions(g.dir)
		if err != nil {
			return err
		}
		if fh != nil {
			// Another create took this version at the same moment, under
			// another name: the smaller name keeps it, the other moves on.
			if !slices.ContainsFunc(taken[mustVersion(file)], func(n string) bool { return n < file }) {
				break
			}
			fh.Close()
			os.Remove(path)
			fh = nil
			if attempt > 100 {
				return fmt.Errorf("create: no free version after %d attempts", attempt)
			}
			continue
		}
		version = nextTimestamp(now, taken)
		if f.sequential {
			next := int64(1)
			for v := range taken {
				next = max(next, v+1) // the newest plus one, as goose create -s
			}
			version = fmt.Sprintf("%05d", next)
		}
		file = fmt.Sprintf("%s_%s.%s", version, name, kind)
		path = filepath.Join(g.dir, file)
		fh, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && attempt < 100 {
			continue // the same name, created by another create meanwhile
		}
		if err != nil {
			return err
		}
	}
	body := sqlTemplate
	if kind == "go" {
		body = strings.ReplaceAll(goTemplate, "{{NAME}}", camelCase(rawName))
	}
	if _, err := fh.WriteString(body); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Out, "created %s\n", path)
	return nil
}

// takenVersions returns the versions of the migration files in dir, with
// their names.
func takenVersions(dir string) (map[int64][]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	taken := make(map[int64][]string, len(entries))
	for _, e := range entries {
		name := e.Name()
		if ext := filepath.Ext(name); ext != ".sql" && ext != ".go" {
			continue
		}
		if v, err := migrate.ParseVersion(name); err == nil {
			taken[v] = append(taken[v], name)
		}
	}
	return taken, nil
}

func mustVersion(name string) int64 {
	v, _ := migrate.ParseVersion(name)
	return v
}

// nextTimestamp returns the timestamp version of a file created now: the
// current UTC second, or the second after the newest timestamp version
// already in the directory when that is not earlier. Two creates within a
// second thus get distinct versions (the same one would make every later
// command fail on a duplicate), and a new file always sorts last.
func nextTimestamp(now time.Time, taken map[int64][]string) string {
	t := now.UTC().Truncate(time.Second)
	for v := range taken {
		if vt, ok := timestampOf(v); ok && !vt.Before(t) {
			t = vt.Add(time.Second)
		}
	}
	return t.Format(timestampLayout)
}

const timestampLayout = "20060102150405"

// snakeCase turns "AddUsers", "add users" or "add-users" into "add_users".
func snakeCase(s string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range s {
		switch {
		case unicode.IsUpper(r):
			if prevLower {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			prevLower = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			prevLower = true
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			prevLower = false
		}
	}
	return strings.Trim(b.String(), "_")
}

// camelCase names a Go migration's functions as goose create does: each run
// of letters and digits capitalised, the rest lower case, nothing between.
func camelCase(s string) string {
	var b strings.Builder
	first := true
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsNumber(r):
			first = true
		case first:
			b.WriteRune(unicode.ToUpper(r))
			first = false
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func newFixCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "fix",
		Short: "Renumber timestamp-versioned files sequentially after the last sequential one, as goose fix does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			migs, err := g.loadMigrations()
			if err != nil {
				return err
			}
			next := int64(1)
			var stamped []*migrate.Migration
			for _, m := range migs {
				if isTimestamp(m.Version) {
					stamped = append(stamped, m)
				} else {
					next = m.Version + 1
				}
			}
			for _, m := range stamped {
				if strings.HasPrefix(m.Source, "go migration") {
					continue
				}
				newName := strings.Replace(m.Source, fmt.Sprint(m.Version), fmt.Sprintf("%05d", next), 1)
				if err := os.Rename(filepath.Join(g.dir, m.Source), filepath.Join(g.dir, newName)); err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "renamed %s => %s\n", m.Source, newName)
				next++
			}
			return nil
		},
	}
}

// isTimestamp reports whether a version reads as goose's timestamp format.
func isTimestamp(v int64) bool {
	_, ok := timestampOf(v)
	return ok
}

func timestampOf(v int64) (time.Time, bool) {
	t, err := time.Parse(timestampLayout, fmt.Sprint(v))
	return t, err == nil && t.After(time.Unix(0, 0))
}
