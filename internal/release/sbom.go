package release

import (
	"debug/buildinfo"
	"encoding/json"
	"runtime/debug"
	"sort"
	"time"
)

// CycloneDX 1.5 JSON, the fields shiplock fills.
type (
	cdxBOM struct {
		BOMFormat   string         `json:"bomFormat"`
		SpecVersion string         `json:"specVersion"`
		Version     int            `json:"version"`
		Metadata    cdxMetadata    `json:"metadata"`
		Components  []cdxComponent `json:"components"`
	}
	cdxMetadata struct {
		Timestamp string       `json:"timestamp"`
		Component cdxComponent `json:"component"`
	}
	cdxComponent struct {
		Type       string        `json:"type"`
		Name       string        `json:"name"`
		Version    string        `json:"version"`
		PURL       string        `json:"purl"`
		Hashes     []cdxHash     `json:"hashes,omitempty"`
		Properties []cdxProperty `json:"properties,omitempty"`
	}
	cdxHash struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	}
	cdxProperty struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
)

// SBOM is a CycloneDX 1.5 JSON SBOM of a Go binary from its own build
// information: the main module (with binSHA256, the binary's hash, and the
// build settings) and every module linked in, with its version and go.sum
// hash (a replaced module is listed as its replacement). It is dated at
// epoch so the same binary gives the same bytes.
func SBOM(bi *buildinfo.BuildInfo, binSHA256 string, epoch time.Time) ([]byte, error) {
	main := component("application", bi.Main)
	main.Hashes = []cdxHash{{Alg: "SHA-256", Content: binSHA256}}
	main.Properties = append(main.Properties, cdxProperty{"go:version", bi.GoVersion})
	for _, s := range bi.Settings {
		main.Properties = append(main.Properties, cdxProperty{"go:build:" + s.Key, s.Value})
	}
	bom := cdxBOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		Metadata:   cdxMetadata{Timestamp: epoch.UTC().Format(time.RFC3339), Component: main},
		Components: []cdxComponent{},
	}
	for _, d := range bi.Deps {
		m := *d
		if d.Replace != nil {
			m = *d.Replace
		}
		c := component("library", m)
		if d.Replace != nil {
			c.Properties = append(c.Properties, cdxProperty{"go:replaces", d.Path + "@" + d.Version})
		}
		bom.Components = append(bom.Components, c)
	}
	sort.Slice(bom.Components, func(i, j int) bool { return bom.Components[i].Name < bom.Components[j].Name })
	return json.MarshalIndent(bom, "", "  ")
}

func component(typ string, m debug.Module) cdxComponent {
	c := cdxComponent{Type: typ, Name: m.Path, Version: m.Version, PURL: "pkg:golang/" + m.Path + "@" + m.Version}
	if m.Sum != "" {
		// go.sum's h1: hash (of the module's file tree), not a file's
		// SHA-256: a property, as CycloneDX hashes are of content.
		c.Properties = append(c.Properties, cdxProperty{"go:sum", m.Sum})
	}
	return c
}
