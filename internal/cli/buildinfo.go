package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// buildVersion describes this binary from the build information the Go
// toolchain records in it (no -ldflags -X to forget): the module version
// ("go install ...@v1.2.3" records v1.2.3; a checkout build records a
// pseudo-version or "(devel)"), the VCS commit, the Go version, the target
// and the build tags.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "shiplock (no build information)\n"
	}
	return formatBuildInfo(bi)
}

func formatBuildInfo(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "shiplock %s\n", version)
	if rev := set["vcs.revision"]; rev != "" {
		if set["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "commit:  %s\n", rev)
		if t := set["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "time:    %s\n", t)
		}
	}
	fmt.Fprintf(&b, "go:      %s %s/%s", bi.GoVersion, set["GOOS"], set["GOARCH"])
	if cgo, ok := set["CGO_ENABLED"]; ok {
		fmt.Fprintf(&b, " CGO_ENABLED=%s", cgo)
	}
	b.WriteString("\n")
	if tags := set["-tags"]; tags != "" {
		fmt.Fprintf(&b, "tags:    %s\n", tags)
	}
	return b.String()
}
