package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/shiplock/shiplock/lint"
	"github.com/shiplock/shiplock/lint/linttest"
)

type recallRow struct {
	rule                                           string
	hazards, ship, squawk, safes, shipFP, squawkFP int
}

type recallResult struct {
	hazards, ship, squawk, safes, shipFP, squawkFP int
	otherHazards, otherShip                        int
	rows                                           []recallRow
}

// labelled runs both tools on every case of the labelled set (squawk once
// on a directory of one file per case).
func labelled(work, squawk string, cases []linttest.Case) (recallResult, error) {
	var res recallResult
	dir := filepath.Join(work, "labelled")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	for i, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.sql", i)), []byte(c.File()), 0o644); err != nil {
			return res, err
		}
	}
	_, out, err := timed(work, []string{squawk, "--reporter", "json", filepath.Join(dir, "*.sql")})
	if err != nil {
		return res, err
	}
	sq, err := squawkFindings(out)
	if err != nil {
		return res, err
	}
	squawkSaw := map[string]map[string]bool{} // file -> our rule
	for _, f := range sq {
		if r, ok := squawkRules[f.rule]; ok {
			if squawkSaw[f.file] == nil {
				squawkSaw[f.file] = map[string]bool{}
			}
			squawkSaw[f.file][r] = true
		}
	}
	both := map[string]bool{}
	for _, r := range squawkRules {
		both[r] = true
	}
	rows := map[string]*recallRow{}
	for i, c := range cases {
		rep, err := lint.Check(c.Inputs(), c.Options())
		if err != nil {
			return res, fmt.Errorf("%s: %v", c.Name(), err)
		}
		shipHit := false
		for _, f := range rep.Findings {
			if f.Rule == c.Rule {
				shipHit = true
			}
		}
		if !both[c.Rule] {
			if c.Hazard {
				res.otherHazards++
				if shipHit {
					res.otherShip++
				}
			}
			continue
		}
		row := rows[c.Rule]
		if row == nil {
			row = &recallRow{rule: c.Rule}
			rows[c.Rule] = row
		}
		sqHit := squawkSaw[fmt.Sprintf("%03d.sql", i)][c.Rule]
		if c.Hazard {
			row.hazards++
			res.hazards++
			if shipHit {
				row.ship++
				res.ship++
			}
			if sqHit {
				row.squawk++
				res.squawk++
			}
			continue
		}
		row.safes++
		res.safes++
		if len(rep.Findings) > 0 {
			row.shipFP++
			res.shipFP++
		}
		if sqHit {
			row.squawkFP++
			res.squawkFP++
		}
	}
	for _, r := range rows {
		res.rows = append(res.rows, *r)
	}
	sort.Slice(res.rows, func(i, j int) bool { return res.rows[i].rule < res.rows[j].rule })
	return res, nil
}
