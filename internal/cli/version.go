package cli

import (
	"fmt"
	"strconv"
)

// versionValue is a flag holding a migration version. Versions are decimal
// everywhere, as in file names: pflag's Int64Var reads "00012" as octal 10
// (and rejects "00019"), so "down --to 00012" would revert more than asked.
type versionValue struct{ v *int64 }

func newVersionValue(p *int64) versionValue { return versionValue{p} }

func (f versionValue) String() string {
	if f.v == nil {
		return "0"
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f versionValue) Set(s string) error {
	n, err := parseVersion(s)
	if err != nil {
		return err
	}
	*f.v = n
	return nil
}

func (f versionValue) Type() string { return "version" }

// parseVersion reads a version given by the user: a decimal number, 0 or
// more, leading zeros allowed ("00012" is 12).
func parseVersion(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a version: want a decimal number such as 12 or 20261126120000", s)
	}
	return n, nil
}
