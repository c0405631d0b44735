// Command toolbox is the test "image" of shiplock's Kubernetes harness
// (test/kube): the node agent runs it for containers of image
// shiplock.test/toolbox. One binary, small steps, chained with "--then":
//
//	toolbox log TEXT...               print each TEXT on its own line
//	toolbox ticker N INTERVAL         print "tick 1".."tick N", one per INTERVAL
//	toolbox sleep DURATION            sleep (SIGTERM ends it with exit 0)
//	toolbox exit CODE [MESSAGE]       write MESSAGE (if any) as termination message, exit CODE
//	toolbox check-env NAME=VALUE...   exit 1 (with a termination message) unless each NAME has VALUE
//	toolbox write FILE TEXT           write TEXT to FILE
//	toolbox check-file FILE TEXT      exit 1 unless FILE contains exactly TEXT
//	toolbox fail-once FILE            exit 1 and create FILE if FILE does not exist
//	toolbox serve PORT                HTTP on 127.0.0.1:PORT: /healthz, / and POST /shutdown (exit 0); SIGTERM exits 0
//	toolbox get URL [TIMEOUT]         GET until 2xx (retrying up to TIMEOUT, default 30s)
//	toolbox post URL [TIMEOUT]        POST until 2xx (retrying up to TIMEOUT, default 30s)
//
// The termination message file is $TERMINATION_MESSAGE_PATH (set by the node
// agent), else /dev/termination-log; --termination-log=PATH before the first
// step overrides both.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var terminationLog = "/dev/termination-log"

func main() {
	if p := os.Getenv("TERMINATION_MESSAGE_PATH"); p != "" {
		terminationLog = p
	}
	args := os.Args[1:]
	if len(args) > 0 {
		if p, ok := strings.CutPrefix(args[0], "--termination-log="); ok {
			terminationLog, args = p, args[1:]
		}
	}
	if len(args) == 0 {
		fail(2, "usage: toolbox STEP [ARGS...] [--then STEP [ARGS...]]...")
	}
	for _, step := range splitSteps(args) {
		if err := run(step[0], step[1:]); err != nil {
			fail(1, fmt.Sprintf("%s: %v", step[0], err))
		}
	}
}

func splitSteps(args []string) [][]string {
	var steps [][]string
	cur := []string{}
	for _, a := range args {
		if a == "--then" {
			steps = append(steps, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	return append(steps, cur)
}

// fail writes msg to stderr and as termination message, then exits.
func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "toolbox:", msg)
	_ = os.WriteFile(terminationLog, []byte(msg), 0o644)
	os.Exit(code)
}

func need(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func run(step string, args []string) error {
	switch step {
	case "log":
		for _, a := range args {
			fmt.Println(a)
		}
	case "ticker":
		if err := need(args, 2, "ticker N INTERVAL"); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		for i := 1; i <= n; i++ {
			fmt.Printf("tick %d\n", i)
			if i < n {
				time.Sleep(d)
			}
		}
	case "sleep":
		if err := need(args, 1, "sleep DURATION"); err != nil {
			return err
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		select {
		case <-ctx.Done():
			fmt.Println("sleep: got SIGTERM")
			os.Exit(0)
		case <-time.After(d):
		}
	case "exit":
		if err := need(args, 1, "exit CODE [MESSAGE]"); err != nil {
			return err
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		if len(args) > 1 {
			if err := os.WriteFile(terminationLog, []byte(strings.Join(args[1:], " ")), 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("exit: %d\n", code)
		os.Exit(code)
	case "check-env":
		var bad []string
		for _, a := range args {
			k, want, _ := strings.Cut(a, "=")
			if got, ok := os.LookupEnv(k); !ok || got != want {
				bad = append(bad, fmt.Sprintf("%s=%q (want %q)", k, got, want))
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, ", "))
		}
		fmt.Println("check-env: ok")
	case "write":
		if err := need(args, 2, "write FILE TEXT"); err != nil {
			return err
		}
		return os.WriteFile(args[0], []byte(args[1]), 0o644)
	case "check-file":
		if err := need(args, 2, "check-file FILE TEXT"); err != nil {
			return err
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		if string(b) != args[1] {
			return fmt.Errorf("%s has %q, want %q", args[0], b, args[1])
		}
		fmt.Println("check-file: ok")
	case "fail-once":
		if err := need(args, 1, "fail-once FILE"); err != nil {
			return err
		}
		if _, err := os.Stat(args[0]); err == nil {
			fmt.Println("fail-once: second run")
			return nil
		}
		if err := os.WriteFile(args[0], nil, 0o644); err != nil {
			return err
		}
		return fmt.Errorf("first run (created %s)", args[0])
	case "serve":
		if err := need(args, 1, "serve PORT"); err != nil {
			return err
		}
		return serve(args[0])
	case "get", "post":
		if err := need(args, 1, step+" URL [TIMEOUT]"); err != nil {
			return err
		}
		timeout := 30 * time.Second
		if len(args) > 1 {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return err
			}
			timeout = d
		}
		return request(strings.ToUpper(step), args[0], timeout)
	default:
		return fmt.Errorf("unknown step")
	}
	return nil
}

func serve(port string) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if h := os.Getenv("HOSTNAME"); h != "" {
		host = h
	}
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "shutting down")
		select {
		case <-done:
		default:
			close(done)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	fmt.Printf("serve: listening on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		fmt.Println("serve: got SIGTERM")
	case <-done:
		fmt.Println("serve: shutdown requested")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

func request(method, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				fmt.Printf("%s %s: %s\n", method, url, resp.Status)
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s: %v", method, url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
