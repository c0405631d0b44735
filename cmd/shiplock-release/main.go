// Command shiplock-release builds a release into OUT (see internal/release):
// the archives shiplock_VERSION_OS_ARCH.tar.gz (static binary, LICENSE,
// man pages, shell completions), one CycloneDX SBOM per binary, the krew
// manifest shiplock.krew.yaml, the images (OUT/images, OUT/images.oci.tar)
// and SHA256SUMS. Run it from a checkout with HEAD tagged vX.Y.Z:
//
//	go run ./cmd/shiplock-release -out dist -version v1.2.3
//	go run ./cmd/shiplock-release -out dist -platforms linux/amd64 -images=false
//	go run ./cmd/shiplock-release -docs DIR   # man pages and completions only
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/shiplock/shiplock/internal/imagebuild"
	"github.com/shiplock/shiplock/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shiplock-release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shiplock-release", flag.ContinueOnError)
	var o release.Options
	var platforms, docs string
	fs.StringVar(&o.Out, "out", "", "output directory (must be empty or absent)")
	fs.StringVar(&o.ModuleDir, "C", ".", "shiplock's module directory, a git checkout")
	fs.StringVar(&o.Version, "version", "", "the version being released: HEAD must be tagged with it and the tree clean (empty: whatever the checkout builds)")
	fs.StringVar(&platforms, "platforms", "", "platforms, comma-separated (default linux and darwin × amd64 and arm64)")
	fs.BoolVar(&o.Images, "images", true, "build the container images of the linux platforms")
	fs.StringVar(&o.URL, "url", release.DefaultURL, "krew manifest: the archives' address, a template of {{.Version}} and {{.Archive}}")
	fs.StringVar(&docs, "docs", "", "only write the man pages (DIR/man/man1) and shell completions (DIR/completions) to DIR")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("no arguments expected, got %q", fs.Args())
	}
	if docs != "" {
		return release.WriteDocs(docs)
	}
	if o.Out == "" {
		return fmt.Errorf("-out is required")
	}
	var err error
	if platforms != "" {
		if o.Platforms, err = imagebuild.ParsePlatforms(platforms); err != nil {
			return err
		}
	}
	if o.Epoch, err = imagebuild.SourceDateEpoch(); err != nil {
		return err
	}
	start := time.Now()
	res, err := release.Build(ctx, o)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		fmt.Println(f)
	}
	fmt.Printf("shiplock %s built in %s\n", res.Version, time.Since(start).Round(100*time.Millisecond))
	return nil
}
