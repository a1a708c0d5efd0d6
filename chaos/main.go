// Command chaos is the fault-injection suite (make chaos, make chaos-short). It builds the real
// binaries and runs `pipeline serve`, three `pipeline worker` processes and a fake Milvus
// (cmd/milvusfake) as separate processes against a private Postgres cluster and a private
// redis-server it starts itself (temp dirs, free ports on 127.0.0.1), serves an
// OpenAI-compatible embedder with faults itself, ingests a corpus across many jobs and, while
// they run, kills workers and the server with -9, makes the vector store fail, restarts Redis,
// flushes it (FLUSHALL) and restarts Postgres (pg_ctl restart -m immediate). It samples every
// process's memory. At the end it checks that nothing was lost or duplicated and prints the
// figures; it exits 1 when a check fails.
//
//	go run ./chaos -short        # ~1,500 documents, each fault at least once, under 5 minutes
//	go run ./chaos -out chaos.json
//
// With -postgres-url / -redis-url it uses those servers instead (a database and a key prefix of
// its own) and skips the faults that would hit their other users: Postgres and Redis restarts;
// FLUSHALL becomes deleting the run's own keys.
//
// It cleans up everything it started (processes, the private servers, database, Redis keys,
// temp dirs), also on failure and on Ctrl-C; a run killed with -9 is cleaned up by the next one.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	short    bool
	out      string
	pgURL    string
	redisURL string
	seed     uint64
	keepLogs bool
	docs     int
	perCall  int
}

func main() {
	var o options
	flag.BoolVar(&o.short, "short", false, "short run (~1,500 documents, each fault once, bounded to ~4 min)")
	flag.StringVar(&o.out, "out", "", "write the figures as JSON to this file")
	flag.StringVar(&o.pgURL, "postgres-url", "", "use this Postgres (admin URL; a database chaos_<random> is created and dropped) instead of a private cluster; no Postgres restart then")
	flag.StringVar(&o.redisURL, "redis-url", "", "use this Redis (only keys under a prefix of the run's own are touched) instead of a private redis-server; no Redis restart or FLUSHALL then")
	flag.Uint64Var(&o.seed, "seed", 0, "random seed of the corpus and embedder faults (0 = from the clock)")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep the temp dir with the processes' logs")
	flag.IntVar(&o.docs, "docs", 0, "documents to ingest (default 1500 short, 5000 full)")
	flag.Parse()
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	o.perCall = 100
	if o.docs == 0 {
		o.docs = 5000
		if o.short {
			o.docs = 1500
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nchaos: %s: stopping and cleaning up (a second signal is ignored)\n", s)
		cancel()
	}()

	code := 0
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: FAIL:", err)
		code = 1
	}
	cancel()
	os.Exit(code)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func run(ctx context.Context, o options) (err error) {
	h := &harness{opts: o, id: randomHex(4), started: time.Now()}
	defer func() {
		h.cleanup(err != nil)
	}()
	if err := h.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	rep, err := h.exercise(ctx)
	if rep != nil {
		rep.print(os.Stdout)
		if o.out != "" {
			if werr := rep.writeJSON(o.out); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if err == nil && len(rep.Problems) > 0 {
			err = fmt.Errorf("%d check(s) failed", len(rep.Problems))
		}
	}
	return err
}
