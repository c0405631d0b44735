package cli

import (
	"runtime/debug"
	"testing"
)

// TestFormatBuildInfo: what --version prints for the two kinds of builds,
// from the build information Go records.
func TestFormatBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{{
		name: "go install ...@v1.2.3",
		bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shiplock/shiplock", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "CGO_ENABLED", Value: "0"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}},
		want: "shiplock v1.2.3\ngo:      go1.26.8 linux/arm64 CGO_ENABLED=0\n",
	}, {
		name: "checkout build, modified",
		bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shiplock/shiplock", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "-tags", Value: "nokube,nosqlite"}, {Key: "GOOS", Value: "darwin"}, {Key: "GOARCH", Value: "amd64"},
				{Key: "vcs.revision", Value: "14508f0"}, {Key: "vcs.time", Value: "2026-11-29T01:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
		want: "shiplock (devel)\ncommit:  14508f0 (modified)\ntime:    2026-11-29T01:00:00Z\ngo:      go1.26.8 darwin/amd64\ntags:    nokube,nosqlite\n",
	}} {
		if got := formatBuildInfo(&tc.bi); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}
