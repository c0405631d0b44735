package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes one finding per line, "file:line: rule severity:
// message", with the fix indented below it.
func WriteText(w io.Writer, fs []Finding) error {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s:%d: %s %s: %s\n    fix: %s\n", f.File, f.Line, f.Rule, f.Severity, f.Message, f.Fix)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type findingJSON struct {
	Finding
	Severity string `json:"severity"`
}

// WriteJSON writes {"findings": [...], "checked": n, "suppressed": n,
// "baseline": "..."}.
func WriteJSON(w io.Writer, r *Report, baseline string) error {
	out := struct {
		Findings   []findingJSON `json:"findings"`
		Checked    int           `json:"checked"`
		Read       int           `json:"read"`
		Suppressed int           `json:"suppressed"`
		Baseline   string        `json:"baseline"`
	}{Findings: []findingJSON{}, Checked: r.Checked, Read: r.Read, Suppressed: r.Suppressed, Baseline: baseline}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, findingJSON{f, f.Severity.String()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteGitHub writes GitHub Actions workflow commands
// (::error file=F,line=N,title=RULE::message), which annotate the pull
// request's diff.
func WriteGitHub(w io.Writer, fs []Finding) error {
	var b strings.Builder
	for _, f := range fs {
		level := "error"
		switch f.Severity {
		case Warning:
			level = "warning"
		case Info:
			level = "notice"
		}
		fmt.Fprintf(&b, "::%s file=%s,line=%d,title=%s::%s\n", level, ghProperty(f.File), f.Line, ghProperty("shiplock "+f.Rule),
			ghData(f.Message+". Fix: "+f.Fix))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData and ghProperty escape as the Actions runner unescapes
// (toolkit/core/src/command.ts).
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// SARIF 2.1.0, the subset code scanning reads.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string      `json:"id"`
	ShortDescription     sarifText   `json:"shortDescription"`
	Help                 sarifText   `json:"help"`
	DefaultConfiguration sarifConfig `json:"defaultConfiguration"`
	Properties           struct {
		Tags []string `json:"tags"`
	} `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// WriteSARIF writes a SARIF 2.1.0 log with every rule and the findings;
// file names become relative URIs with forward slashes.
func WriteSARIF(w io.Writer, fs []Finding) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "shiplock lint"}}, Results: []sarifResult{}}
	index := map[string]int{}
	for i, r := range rules {
		sr := sarifRule{ID: r.ID, ShortDescription: sarifText{r.Why}, Help: sarifText{"Safe rewrite: " + r.Fix},
			DefaultConfiguration: sarifConfig{sarifLevel(r.Severity)}}
		sr.Properties.Tags = []string{string(r.Class)}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sr)
		index[r.ID] = i
	}
	for _, f := range fs {
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message: sarifText{f.Message + ". Fix: " + f.Fix}}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = strings.ReplaceAll(f.File, "\\", "/")
		loc.PhysicalLocation.Region.StartLine = f.Line
		res.Locations = []sarifLocation{loc}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}
