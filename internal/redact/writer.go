package redact

import (
	"bytes"
	"io"
	"sync"
)

// maxLine bounds how much a Writer holds while waiting for a newline.
const maxLine = 1 << 20

// Writer is an io.Writer that redacts what is written to it, line by line,
// through secrets.String before writing it to the underlying writer. It holds
// back a line until its newline arrives, so that a password split across two
// Write calls is still found; call Flush at the end to write a last
// unterminated line. A line longer than 1 MiB is redacted and written in
// pieces, and a secret straddling such a cut is not recognised.
//
// Writer is safe for concurrent use; each Write is handled as a whole.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	secrets *Secrets
	buf     []byte
}

var _ io.Writer = (*Writer)(nil)

// NewWriter returns a Writer that writes to w. secrets may be nil (see
// [Secrets]).
func NewWriter(w io.Writer, secrets *Secrets) *Writer {
	return &Writer{w: w, secrets: secrets}
}

// Write redacts and writes every complete line in what has been written so
// far and keeps the rest. It returns len(p) unless the underlying writer
// fails, in which case it returns 0 and that error.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	end := bytes.LastIndexByte(w.buf, '\n') + 1
	if end == 0 && len(w.buf) > maxLine {
		end = len(w.buf)
	}
	if end == 0 {
		return len(p), nil
	}
	err := w.write(w.buf[:end])
	w.buf = append(w.buf[:0], w.buf[end:]...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush redacts and writes a pending unterminated line, if any.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *Writer) write(p []byte) error {
	_, err := io.WriteString(w.w, w.secrets.String(string(p)))
	return err
}
