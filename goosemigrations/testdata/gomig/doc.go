// Package gomig is a goose migrations directory that mixes SQL files and
// Go migrations registered with goose in init, as teams write them. A Go
// migration fails half-way on purpose when SHIPLOCK_TEST_GO_FAIL holds
// its version.
package gomig

import (
	"fmt"
	"os"
	"strconv"
)

// failAt fails when the test asked version v to fail at this point.
func failAt(v int64) error {
	if os.Getenv("SHIPLOCK_TEST_GO_FAIL") == strconv.FormatInt(v, 10) {
		return fmt.Errorf("version %d fails half-way on purpose", v)
	}
	return nil
}
