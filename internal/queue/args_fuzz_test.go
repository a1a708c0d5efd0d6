package queue

import (
	"context"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/taskq/v3"
)

// FuzzParseArgs: whatever a message's arguments hold, parseArgs returns or fails without
// panicking, and what messageArgs writes it reads back: the batch id, the enqueue's number, and
// no trace context where none was written.
func FuzzParseArgs(f *testing.F) {
	for _, args := range [][]any{
		messageArgs(context.Background(), "6f1c3c1e-3f7d-4a39-9a56-1b1e54a1d0c2", 1),
		{"6f1c3c1e-3f7d-4a39-9a56-1b1e54a1d0c2"},
		{"id", map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", enqueueArg: "7"}},
		{"id", "not a map"},
		{1, 2, 3},
		{},
	} {
		b, err := msgpack.Marshal(args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "id", 1)
	}
	f.Add([]byte{0xff, 0x00}, "", 0)
	f.Fuzz(func(t *testing.T, raw []byte, id string, n int) {
		_, _, _, _ = parseArgs(&taskq.Message{ArgsBin: raw})

		b, err := msgpack.Marshal(messageArgs(context.Background(), id, n))
		if err != nil {
			t.Fatal(err)
		}
		gotID, enqueue, carrier, err := parseArgs(&taskq.Message{ArgsBin: b})
		if err != nil {
			t.Fatalf("parse what messageArgs wrote: %v", err)
		}
		if gotID != id || enqueue != strconv.Itoa(n) || carrier != nil {
			t.Fatalf("read back %q, %q, %v; wrote %q, %d and no trace", gotID, enqueue, carrier, id, n)
		}
	})
}
