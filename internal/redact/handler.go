package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler returns a slog.Handler that redacts each record before passing it
// to h: the message and every attribute, those added with WithAttrs and those
// nested in groups, through secrets.String (secrets may be nil: see
// [Secrets]). In detail:
//
//   - an attribute whose key looks like a password (see [IsSecretKey]) has
//     its value replaced by [Mask], whatever its kind;
//   - string values are redacted;
//   - LogValuer values are resolved first;
//   - an error value is replaced by its redacted Error text when that text
//     or its %+v text needs redaction, and any other value of kind Any by its
//     redacted %+v text when that does; values that need nothing keep their
//     type, so a JSON handler still renders them as it would have (a value
//     whose JSON form holds a secret that its %+v form does not is not
//     caught);
//   - numbers, booleans, times and durations pass unchanged.
//
// Group names and attribute keys are not redacted. The returned handler is
// safe for concurrent use if h is.
func Handler(h slog.Handler, secrets *Secrets) slog.Handler {
	return &handler{inner: h, secrets: secrets}
}

type handler struct {
	inner   slog.Handler
	secrets *Secrets
}

var _ slog.Handler = (*handler)(nil)

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.secrets.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{inner: h.inner.WithAttrs(red), secrets: h.secrets}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), secrets: h.secrets}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() != slog.KindGroup && IsSecretKey(a.Key) {
		return slog.String(a.Key, Mask)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.secrets.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = h.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		// TextHandler prints %+v, JSONHandler an error's Error text (fmt
		// recovers from a panicking Error or String method).
		text := fmt.Sprintf("%+v", v.Any())
		red := h.secrets.String(text)
		if err, ok := v.Any().(error); ok {
			msg := fmt.Sprint(err)
			if redMsg := h.secrets.String(msg); redMsg != msg || red != text {
				return slog.String(a.Key, redMsg)
			}
		}
		if red != text {
			return slog.String(a.Key, red)
		}
		return slog.Attr{Key: a.Key, Value: v}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
