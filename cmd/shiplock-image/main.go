// Command shiplock-image builds shiplock's container images without a
// Docker daemon (see internal/imagebuild): the release image shiplock:TAG
// for linux/amd64 and linux/arm64, optionally migration images and the
// accounts example's images, written as an OCI image layout (OUT/layout),
// as a tar of that layout (OUT/images.oci.tar) and optionally pushed.
//
//	go run ./cmd/shiplock-image -out /tmp/images [-tag v1.2.3] \
//	    [-migrations NAME=DIR ...] [-accounts] [-push 127.0.0.1:5000] \
//	    [-bin ./myshiplock -platforms linux/amd64]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplock/shiplock/internal/imagebuild"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shiplock-image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shiplock-image", flag.ContinueOnError)
	var o imagebuild.Options
	var out, platforms, push string
	var migrations multi
	var accounts bool
	fs.StringVar(&out, "out", "", "output directory (required; layout/ and images.oci.tar are replaced)")
	fs.StringVar(&o.ModuleDir, "C", ".", "shiplock's module directory")
	fs.StringVar(&o.Tag, "tag", "dev", "the release image's tag")
	fs.StringVar(&o.Prefix, "prefix", "", `prefix of every image name, e.g. "registry.example.com/"`)
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "platforms, comma-separated")
	fs.StringVar(&o.CACerts, "ca-certs", imagebuild.CACertsPath, "CA bundle to put in the image")
	fs.Var(&migrations, "migrations", "NAME=DIR: a migration image NAME (repository:tag) with the *.sql files of DIR; repeatable")
	fs.BoolVar(&accounts, "accounts", false, "also build the accounts example's images (accounts:v1, accounts:v2, accounts-migrate:v1, accounts-migrate:v2)")
	fs.StringVar(&o.Binary, "bin", "", "a shiplock binary built elsewhere (your own, with Go migrations compiled in) for the release image, instead of building ./cmd/shiplock; static, for the one platform of -platforms")
	fs.StringVar(&push, "push", "", "push every image to this registry (host:port[/path]); plain HTTP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("-out is required and there are no arguments")
	}
	var err error
	if o.Platforms, err = imagebuild.ParsePlatforms(platforms); err != nil {
		return err
	}
	if o.Epoch, err = imagebuild.SourceDateEpoch(); err != nil {
		return err
	}
	for _, m := range migrations {
		name, dir, ok := strings.Cut(m, "=")
		if !ok {
			return fmt.Errorf("-migrations %q: want NAME=DIR", m)
		}
		o.Migrations = append(o.Migrations, imagebuild.Migration{Name: name, Dir: dir})
	}
	if accounts {
		apps, ms := imagebuild.Accounts(o.ModuleDir)
		o.Apps, o.Migrations = append(o.Apps, apps...), append(o.Migrations, ms...)
	}
	o.WorkDir = filepath.Join(out, "bin")
	start := time.Now()
	res, err := imagebuild.Build(ctx, o)
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(out, "layout")
	if err := os.RemoveAll(layoutDir); err != nil {
		return err
	}
	if err := imagebuild.WriteLayout(layoutDir, res.Images); err != nil {
		return err
	}
	if err := imagebuild.WriteArchive(layoutDir, filepath.Join(out, "images.oci.tar"), o.Epoch); err != nil {
		return err
	}
	if push != "" {
		if err := imagebuild.Push(ctx, push, res.Images); err != nil {
			return err
		}
	}
	return imagebuild.Report(os.Stdout, res, time.Since(start))
}
