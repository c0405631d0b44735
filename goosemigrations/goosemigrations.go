// Package goosemigrations hands the Go migrations a program registered
// with goose (goose.AddMigrationContext, AddMigrationNoTxContext and their
// older spellings, usually in the init functions of the migrations'
// package) to shiplock's engine, with the transaction semantics goose
// gives them:
//
//   - registered with a transaction (AddMigrationContext): the function
//     gets a *sql.Tx, and the version row is written in that transaction;
//     a failure rolls both back.
//   - registered without one (AddMigrationNoTxContext): the function gets
//     the *sql.DB, and the version row is written after it returns; a
//     failure leaves what it did and records nothing.
//   - a nil function records (or, down, removes) the version and runs
//     nothing.
//
// Pass Collect as shiplockmain.Options.GoMigrations to build a shiplock
// binary with a team's Go migrations compiled in, or use it with
// migrate.Load directly.
package goosemigrations

import (
	"errors"
	"math"
	"path/filepath"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/migrate"
)

// Collect returns the Go migrations registered with goose's global
// registry that goose would run from the migrations directory dir: those
// whose version has a numbered .go file in dir, or, when dir holds no such
// file, every registered one (goose.CollectMigrations decides, so the
// choice is goose's own). dir is read through goose's base file system
// (the operating system's unless the program called goose.SetBaseFS).
//
// A numbered .go file in dir with no registered migration is left out:
// shiplock's engine then refuses any plan that reaches it, as goose does.
func Collect(dir string) ([]migrate.GoMigration, error) {
	all, err := goose.CollectMigrations(dir, 0, math.MaxInt64)
	if errors.Is(err, goose.ErrNoMigrationFiles) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []migrate.GoMigration
	for _, m := range all {
		if m.Type != goose.TypeGo || !m.Registered {
			continue
		}
		out = append(out, convert(m))
	}
	return out, nil
}

// convert chooses the functions as goose's Migration.run does: UseTx
// decides the kind for both directions, and the other kind's functions
// are never called.
func convert(m *goose.Migration) migrate.GoMigration {
	g := migrate.GoMigration{Version: m.Version}
	if m.Source != "" {
		g.Source = filepath.Base(m.Source)
	}
	if m.UseTx {
		g.Up, g.Down = migrate.TxFunc(m.UpFnContext), migrate.TxFunc(m.DownFnContext)
		return g
	}
	g.NoTx = true
	g.UpDB, g.DownDB = migrate.DBFunc(m.UpFnNoTxContext), migrate.DBFunc(m.DownFnNoTxContext)
	return g
}
