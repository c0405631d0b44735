package cli

import (
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }
