package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/shiplock/shiplock/internal/redact"
)

const canary = "Canary-7f3a9c"

type dsnValuer struct{ dsn string }

func (v dsnValuer) LogValue() slog.Value { return slog.StringValue(v.dsn) }

type config struct {
	Host string
	Pass string
}

func TestHandler(t *testing.T) {
	secrets := redact.NewSecrets(canary)
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want []string // substrings of the JSON output
	}{
		{"message", func(l *slog.Logger) { l.Info("connecting with " + canary) },
			[]string{`"msg":"connecting with xxxxx"`}},
		{"string attr", func(l *slog.Logger) { l.Info("m", "note", "pw is "+canary) },
			[]string{`"note":"pw is xxxxx"`}},
		{"DSN attr without known secrets", func(l *slog.Logger) { l.Info("m", "dsn", "postgres://u:other@h/db") },
			[]string{`"dsn":"postgres://u:xxxxx@h/db"`}},
		{"secret key", func(l *slog.Logger) { l.Info("m", "password", "whatever", "PGPASSWORD", 1234) },
			[]string{`"password":"xxxxx"`, `"PGPASSWORD":"xxxxx"`}},
		{"error attr", func(l *slog.Logger) {
			l.Error("m", "err", fmt.Errorf("connect postgres://u:%s@h/db: %w", canary, errors.New("refused")))
		}, []string{`"err":"connect postgres://u:xxxxx@h/db: refused"`}},
		{"clean error keeps its text", func(l *slog.Logger) { l.Error("m", "err", errors.New("refused")) },
			[]string{`"err":"refused"`}},
		{"nested groups", func(l *slog.Logger) {
			l.Info("m", slog.Group("db", slog.String("url", "x "+canary), slog.Group("tls", slog.String("key", canary))))
		}, []string{`"db":{"url":"x xxxxx","tls":{"key":"xxxxx"}}`}},
		{"WithAttrs", func(l *slog.Logger) { l.With("dsn", "password="+canary).Info("m") },
			[]string{`"dsn":"password=xxxxx"`}},
		{"WithGroup", func(l *slog.Logger) { l.WithGroup("g").Info("m", "v", canary) },
			[]string{`"g":{"v":"xxxxx"}`}},
		{"LogValuer", func(l *slog.Logger) { l.Info("m", "dsn", dsnValuer{"host=h password=" + canary}) },
			[]string{`"dsn":"host=h password=xxxxx"`}},
		{"struct holding a secret", func(l *slog.Logger) { l.Info("m", "cfg", config{Host: "h", Pass: canary}) },
			[]string{`"cfg":"{Host:h Pass:xxxxx}"`}},
		{"clean struct keeps its type", func(l *slog.Logger) { l.Info("m", "cfg", config{Host: "h"}) },
			[]string{`"cfg":{"Host":"h","Pass":""}`}},
		{"numbers pass", func(l *slog.Logger) { l.Info("m", "n", 42, "ok", true) },
			[]string{`"n":42`, `"ok":true`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil), secrets))
			tt.log(l)
			out := buf.String()
			if strings.Contains(out, canary) {
				t.Errorf("canary leaked: %s", out)
			}
			if !json.Valid(buf.Bytes()) {
				t.Errorf("output is not JSON: %s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
		})
	}
}

func TestHandlerText(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(redact.Handler(slog.NewTextHandler(&buf, nil), nil))
	l.Info("start", "dsn", "postgres://u:pw@h/db?sslpassword=k")
	want := `msg=start dsn="postgres://u:xxxxx@h/db?sslpassword=xxxxx"`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("got %s\nwant it to contain %s", buf.String(), want)
	}
}

func TestHandlerEnabled(t *testing.T) {
	h := redact.Handler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	if h.Enabled(t.Context(), slog.LevelInfo) {
		t.Error("Info enabled under a Warn handler")
	}
	if !h.Enabled(t.Context(), slog.LevelError) {
		t.Error("Error disabled under a Warn handler")
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"one line", []string{"pw " + canary + "\n"}, "pw xxxxx\n"},
		{"secret split across writes", []string{"pw Canary-7f", "3a9c done\nnext ", "line\n"}, "pw xxxxx done\nnext line\n"},
		{"DSN split across writes", []string{"postgres://u:s", "ecret@h/db\n"}, "postgres://u:xxxxx@h/db\n"},
		{"unterminated last line needs Flush", []string{"a\nb " + canary}, "a\nb xxxxx"},
		{"many lines in one write", []string{"1 " + canary + "\n2 " + canary + "\n3\n"}, "1 xxxxx\n2 xxxxx\n3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := redact.NewWriter(&buf, redact.NewSecrets(canary))
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got %q, want %q", buf.String(), tt.want)
			}
		})
	}
}

func TestWriterHoldsPartialLine(t *testing.T) {
	var buf bytes.Buffer
	w := redact.NewWriter(&buf, nil)
	if _, err := w.Write([]byte("no newline yet")); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q before the newline", buf.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterError(t *testing.T) {
	w := redact.NewWriter(failWriter{}, nil)
	if n, err := w.Write([]byte("line\n")); err == nil || n != 0 {
		t.Errorf("Write = %d, %v; want 0 and the underlying error", n, err)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := redact.NewWriter(&buf, redact.NewSecrets(canary))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				fmt.Fprintf(w, "line with %s in it\n", canary)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 16*50 {
		t.Fatalf("got %d lines, want %d", len(lines), 16*50)
	}
	for _, l := range lines {
		if l != "line with xxxxx in it" {
			t.Fatalf("bad line %q", l)
		}
	}
}
