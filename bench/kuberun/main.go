// Command kuberun measures what "shiplock kube run -- up" costs on top of
// the migration itself: creating the Job, scheduling and starting its pod,
// following its logs and seeing it complete. It runs against the cluster of
// $KUBECONFIG (the test control plane of test/kube, whose node agent maps
// the shiplock.test/shiplock image to a shiplock binary) and a PostgreSQL
// that trusts loopback connections. It is a program, not a test.
//
//	KUBECONFIG=... go run ./bench/kuberun [--reps 5]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kuberun bench:", err)
		os.Exit(1)
	}
}

func run() error {
	reps := flag.Int("reps", 5, "runs")
	admin := flag.String("database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "admin URL of a PostgreSQL that trusts loopback")
	image := flag.String("image", "shiplock.test/shiplock:dev", "the image the node agent maps to shiplock")
	flag.Parse()
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		return fmt.Errorf("KUBECONFIG is not set: start test/kube (see test/kube/README.md)")
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "shiplock-kuberun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "shiplock")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/shiplock").CombinedOutput(); err != nil {
		return fmt.Errorf("build shiplock: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "migrations")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "00001_t.sql"), []byte("-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n"), 0o644); err != nil {
		return err
	}
	u, err := url.Parse(*admin)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, *admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	ns := fmt.Sprintf("kuberun-bench-%d", time.Now().Unix())
	if out, err := exec.Command("kubectl", "--kubeconfig", kc, "create", "namespace", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("create namespace (needs kubectl): %v\n%s", err, out)
	}
	defer exec.Command("kubectl", "--kubeconfig", kc, "delete", "namespace", ns, "--wait=false").Run()
	// The Secret the Job reads its credentials from.
	if out, err := exec.Command("kubectl", "--kubeconfig", kc, "-n", ns, "create", "secret", "generic", "db",
		"--from-literal=username="+u.User.Username(), "--from-literal=password=").CombinedOutput(); err != nil {
		return fmt.Errorf("create secret: %v\n%s", err, out)
	}
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("kubectl", "--kubeconfig", kc, "-n", ns, "get", "serviceaccount", "default").Run() == nil {
			break
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("no default ServiceAccount in %s", ns)
		}
	}

	var walls, migs, overheads []float64
	for i := 0; i < *reps; i++ {
		db := fmt.Sprintf("kuberun_bench_%d_%d", time.Now().Unix(), i)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
		args := []string{"kube", "run", "--kubeconfig", kc, "-n", ns, "--image", *image, "--migrations-dir", dir,
			"--db-host", u.Hostname(), "--db-port", u.Port(), "--db-name", db, "--db-sslmode", "disable", "--secret", "db",
			"--", "up", "-o", "json"}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		conn.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)")
		if err != nil {
			return fmt.Errorf("kube run: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		var res struct {
			DurationMS float64 `json:"duration_ms"`
		}
		// The pod's stdout ends with shiplock's JSON result.
		out := stdout.String()
		if i := strings.Index(out, "{\n"); i >= 0 {
			if err := json.Unmarshal([]byte(out[i:]), &res); err != nil {
				return fmt.Errorf("result JSON: %v\n%s", err, out)
			}
		}
		w := float64(wall.Microseconds()) / 1000
		walls, migs, overheads = append(walls, w), append(migs, res.DurationMS), append(overheads, w-res.DurationMS)
		fmt.Fprintf(os.Stderr, "run %d: wall %.0f ms, migration %.1f ms, overhead %.0f ms\n", i+1, w, res.DurationMS, w-res.DurationMS)
	}
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	fmt.Printf("\n### kube run -- up on the test control plane (%d runs)\n\n", *reps)
	fmt.Printf("| wall, median ms | migration's own, median ms | overhead, median ms | overhead min–max ms | target |\n|---:|---:|---:|---|---|\n")
	sorted := append([]float64(nil), overheads...)
	sort.Float64s(sorted)
	verdict := "MISS"
	if med(overheads) <= 1500 {
		verdict = "PASS (≤ 1.5 s)"
	}
	fmt.Printf("| %.0f | %.1f | %.0f | %.0f–%.0f | %s |\n", med(walls), med(migs), med(overheads), sorted[0], sorted[len(sorted)-1], verdict)
	return nil
}
