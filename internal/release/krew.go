package release

import (
	"bytes"
	"fmt"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Krew's plugin manifest (krew.googlecontainertools.github.com/v1alpha2),
// the fields shiplock fills.
type (
	// KrewPlugin is a krew plugin manifest.
	KrewPlugin struct {
		APIVersion string       `json:"apiVersion"`
		Kind       string       `json:"kind"`
		Metadata   KrewMetadata `json:"metadata"`
		Spec       KrewSpec     `json:"spec"`
	}
	// KrewMetadata names the plugin: "kubectl krew install shiplock".
	KrewMetadata struct {
		Name string `json:"name"`
	}
	// KrewSpec describes the plugin and its archives.
	KrewSpec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Platforms        []KrewPlatform `json:"platforms"`
	}
	// KrewPlatform is one platform's archive.
	KrewPlatform struct {
		Selector KrewSelector `json:"selector"`
		URI      string       `json:"uri"`
		SHA256   string       `json:"sha256"`
		Bin      string       `json:"bin"`
		Files    []KrewFile   `json:"files"`
	}
	// KrewSelector selects a platform by os and arch labels.
	KrewSelector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	// KrewFile is copied from the archive into the plugin's directory.
	KrewFile struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
)

// KrewManifest is the krew plugin manifest of the archives: krew installs
// the archive's shiplock binary as kubectl-shiplock, so "kubectl shiplock
// kube run ..." runs it (shiplock's help then says "kubectl shiplock").
// urlTemplate gives each archive's address from {{.Version}} and
// {{.Archive}}.
func KrewManifest(version, urlTemplate string, archives []Archive) ([]byte, error) {
	tmpl, err := template.New("url").Option("missingkey=error").Parse(urlTemplate)
	if err != nil {
		return nil, fmt.Errorf("release: URL template: %w", err)
	}
	p := KrewPlugin{
		APIVersion: "krew.googlecontainertools.github.com/v1alpha2",
		Kind:       "Plugin",
		Metadata:   KrewMetadata{Name: "shiplock"},
		Spec: KrewSpec{
			Version:          version,
			Homepage:         "https://github.com/shiplock/shiplock",
			ShortDescription: "Run goose-compatible schema migrations as Jobs",
			Description: `shiplock applies goose-format SQL migrations under a lock shared by every
runner. As a kubectl plugin it renders and runs migration Jobs:
"kubectl shiplock kube run -- up" creates the Job, streams its logs and
exits with its code.`,
		},
	}
	for _, a := range archives {
		var uri bytes.Buffer
		if err := tmpl.Execute(&uri, map[string]string{"Version": version, "Archive": a.Name}); err != nil {
			return nil, fmt.Errorf("release: URL template: %w", err)
		}
		p.Spec.Platforms = append(p.Spec.Platforms, KrewPlatform{
			Selector: KrewSelector{MatchLabels: map[string]string{"os": a.Platform.OS, "arch": a.Platform.Architecture}},
			URI:      uri.String(),
			SHA256:   a.SHA256,
			Bin:      "shiplock",
			Files:    []KrewFile{{From: "shiplock", To: "."}, {From: "LICENSE", To: "."}},
		})
	}
	return yaml.Marshal(p)
}
