// Command milvusfake serves the in-process fake Milvus (internal/vector/milvus/milvusfake) as a
// process of its own, for tests that run the real binaries (the chaos suite). It is a test tool:
// rows live in memory and vanish when it exits.
//
// The gRPC server listens on 127.0.0.1 at a free port (the fake chooses it); a control HTTP
// server listens on --control. When both are up, one JSON line goes to stdout:
//
//	{"grpc_addr":"127.0.0.1:40123","control_addr":"127.0.0.1:40124"}
//
// Control endpoints:
//
//	POST /fail?n=5&code=Unavailable   the next n calls (any RPC) fail with that gRPC code
//	GET  /count?collection=NAME       {"rows": N}: rows in the collection (-1 if it does not exist)
//	GET  /calls?method=Upsert         {"calls": N}: calls of one RPC so far, faults included
//	GET  /healthz                     200 ok
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "milvusfake:", err)
		os.Exit(1)
	}
}

func run() error {
	control := flag.String("control", "127.0.0.1:0", "listen address of the control HTTP server")
	token := flag.String("token", "", "token every gRPC call must carry (user:password or API key); empty = none")
	flag.Parse()

	var opts []milvusfake.Option
	if *token != "" {
		opts = append(opts, milvusfake.WithToken(*token))
	}
	fake, err := milvusfake.Start(opts...)
	if err != nil {
		return err
	}
	defer fake.Stop()

	lis, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control: listen: %w", err)
	}
	srv := &http.Server{Handler: controlHandler(fake), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	line, _ := json.Marshal(map[string]string{"grpc_addr": fake.Addr(), "control_addr": lis.Addr().String()})
	fmt.Println(string(line))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

func controlHandler(fake *milvusfake.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > 1_000_000 {
			http.Error(w, "n must be a positive integer", http.StatusBadRequest)
			return
		}
		code, ok := parseCode(r.URL.Query().Get("code"))
		if !ok {
			http.Error(w, "code must be a gRPC code name other than OK, e.g. Unavailable", http.StatusBadRequest)
			return
		}
		fake.FailNext(n, code)
		writeJSON(w, map[string]any{"n": n, "code": code.String()})
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("collection")
		if name == "" {
			http.Error(w, "collection is required", http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]int{"rows": fake.Rows(name)})
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int{"calls": fake.Calls(r.URL.Query().Get("method"))})
	})
	return mux
}

// parseCode accepts a gRPC code by name in any case, with or without underscores
// ("Unavailable", "UNAVAILABLE", "deadline_exceeded"), or by number.
func parseCode(s string) (codes.Code, bool) {
	if s == "" {
		return codes.Unavailable, true
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 16 {
			return 0, false
		}
		return codes.Code(n), true
	}
	want := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	for c := codes.Code(1); c <= 16; c++ {
		if strings.ToLower(c.String()) == want {
			return c, true
		}
	}
	return 0, false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
