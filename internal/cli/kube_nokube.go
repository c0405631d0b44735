//go:build nokube

package cli

import (
	"github.com/spf13/cobra"
)

// newKubeCmd, in a binary built with -tags nokube (the container images),
// only says where the kube commands are: the Kubernetes client and API
// types would double the binary and triple its memory in every pod that
// runs a migration.
func newKubeCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:                "kube",
		Short:              "Not in this build: render and launch Kubernetes Jobs (see the full binary)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return usagef(`this shiplock was built with -tags nokube, for container images: "shiplock kube" is in the full binary (go build ./cmd/shiplock)`)
		},
	}
}
