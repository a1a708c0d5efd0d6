// Package logtest gives tests a log sink they can read while the code under test writes to it
// from its own goroutines.
package logtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Buffer collects what a logger writes, safe for writes from several goroutines and reads by the
// test at once. The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records returns the JSON records logged with the message msg, in order; a line that is not a
// JSON object fails the test.
func (b *Buffer) Records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(strings.TrimSpace(b.String())) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line that is not a JSON object: %v\n%s", err, l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Mentions counts the JSON records logged with the message msg, without parsing them (safe off
// the test's goroutine).
func (b *Buffer) Mentions(msg string) int {
	return strings.Count(b.String(), `"msg":"`+msg+`"`)
}
