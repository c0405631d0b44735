package gomig

import "github.com/pressly/goose/v3"

// Nil functions: goose records the version and runs nothing.
func init() { goose.AddMigrationContext(nil, nil) }
