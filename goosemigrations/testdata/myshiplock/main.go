// Command myshiplock is a team's own shiplock, as the README's "Go
// migrations" section writes it, with testdata/gomig compiled in.
package main

import (
	"os"

	_ "github.com/shiplock/shiplock/goosemigrations/testdata/gomig" // registers its Go migrations with goose

	"github.com/shiplock/shiplock/goosemigrations"
	"github.com/shiplock/shiplock/shiplockmain"
)

func main() {
	os.Exit(shiplockmain.Main(shiplockmain.Options{GoMigrations: goosemigrations.Collect}))
}
