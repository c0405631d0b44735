// Command shiplock applies database schema migrations safely: see
// "shiplock --help" and the README. A team's own shiplock, with its Go
// migrations compiled in, is this same main with shiplockmain.Options set.
package main

import (
	"os"

	"github.com/shiplock/shiplock/shiplockmain"
)

func main() {
	os.Exit(shiplockmain.Main(shiplockmain.Options{}))
}
