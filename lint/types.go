package lint

import (
	"strconv"
	"strings"
)

// splitType reads "varchar(20)" as ("varchar", [20]); arguments that are
// not numbers read as -1.
func splitType(t string) (string, []int) {
	i := strings.IndexByte(t, '(')
	if i < 0 || !strings.HasSuffix(t, ")") {
		return t, nil
	}
	var args []int
	for _, a := range strings.Split(t[i+1:len(t)-1], ",") {
		n, err := strconv.Atoi(a)
		if err != nil {
			n = -1
		}
		args = append(args, n)
	}
	return t[:i], args
}

var ladders = [][]string{
	{"smallint", "integer", "bigint"},
	{"real", "doubleprecision"},
}

func rank(base string) (int, int) {
	for l, ladder := range ladders {
		for r, b := range ladder {
			if b == base {
				return l, r
			}
		}
	}
	return -1, -1
}

// typeChange tells what ALTER COLUMN TYPE from old to new does: whether it
// rewrites the table and whether it narrows the column. An unknown old
// type ("") is taken to rewrite, and not to narrow.
func typeChange(old, new string, using bool) (rewrite, narrow bool) {
	if old == "" {
		return true, false
	}
	ob, oa := splitType(old)
	nb, na := splitType(new)
	if ladder, or := rank(ob); ladder >= 0 {
		if l2, nr := rank(nb); l2 == ladder {
			return or != nr || using, nr < or
		}
		return true, false
	}
	if old == new {
		return using, false
	}
	textual := func(b string) bool { return b == "varchar" || b == "text" }
	switch {
	case textual(ob) && textual(nb):
		// varchar(n) -> varchar(m >= n), varchar or text is binary-coercible;
		// a shorter limit must check every row.
		if nb == "varchar" && len(na) == 1 && (len(oa) == 0 || oa[0] < 0 || na[0] < oa[0]) {
			return true, true
		}
		return using, false
	case ob == "numeric" && nb == "numeric":
		if len(na) == 0 {
			return using, false
		}
		if len(oa) == 0 {
			return true, true
		}
		os, ns := 0, 0
		if len(oa) > 1 {
			os = oa[1]
		}
		if len(na) > 1 {
			ns = na[1]
		}
		if os == ns && na[0] >= oa[0] {
			return using, false
		}
		return true, na[0]-ns < oa[0]-os || ns < os
	case ob == "bitvarying" && nb == "bitvarying":
		if len(na) == 0 || len(oa) > 0 && na[0] >= oa[0] {
			return using, false
		}
		return true, true
	case ob == "cidr" && nb == "inet":
		return using, false
	}
	return true, false
}
