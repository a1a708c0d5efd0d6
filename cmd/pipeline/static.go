package main

// `pipeline static` serves a directory over HTTP, so the demo has a web site on this machine for
// the crawler. It is a convenience for demos and tests, not a web server for the internet.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const defaultStaticAddr = "127.0.0.1:8099"

func staticCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "static DIR",
		Short: "Serve a directory of static files over HTTP (for the demo's sample site)",
		Long: `static serves the files under DIR at --addr until interrupted. A directory is served as its
index.html; a directory without one, a hidden file or directory (a name starting with a dot),
and anything outside DIR (through .. or a symbolic link) answer 404 Not Found. Nothing is
listed. One line is written to stderr at start with the URL; requests are not logged.

It exists so that the demo (scripts/demo.sh) can crawl examples/sample-site with
` + "`pipeline sources add`" + `; it binds to 127.0.0.1 unless told otherwise.`,
		Example: `  pipeline static examples/sample-site
  pipeline static ./public --addr 127.0.0.1:9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatic(cmd.Context(), args[0], addr, cmd.ErrOrStderr(), nil)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultStaticAddr, "host:port to listen on")
	return cmd
}

// Timeouts of the static server: generous for a local crawl, short enough that a stalled
// client cannot hold a connection for long.
const (
	staticReadHeaderTimeout = 5 * time.Second
	staticReadTimeout       = 15 * time.Second
	staticWriteTimeout      = 30 * time.Second
	staticIdleTimeout       = 60 * time.Second
	staticShutdownTimeout   = 5 * time.Second
)

// runStatic serves dir at addr until ctx ends. listening, when set, gets the bound address
// (useful with port 0).
func runStatic(ctx context.Context, dir, addr string, logw io.Writer, listening func(net.Addr)) error {
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	// os.Root refuses every path that leads outside dir, through ".." or a symbolic link.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           newStaticHandler(root.FS()),
		ReadHeaderTimeout: staticReadHeaderTimeout,
		ReadTimeout:       staticReadTimeout,
		WriteTimeout:      staticWriteTimeout,
		IdleTimeout:       staticIdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(logw, "serving %s at http://%s/ (Ctrl-C stops)\n", dir, ln.Addr())
	if listening != nil {
		listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), staticShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// staticHandler serves fsys with http.FileServerFS after refusing what it should not show:
// hidden names and directories without an index.html (FileServerFS would list them).
type staticHandler struct {
	fsys  fs.FS
	files http.Handler
}

func newStaticHandler(fsys fs.FS) http.Handler {
	return &staticHandler{fsys: fsys, files: http.FileServerFS(fsys)}
}

func (h *staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// The same cleaning FileServerFS does, so the checks look at the file it would open.
	name := path.Clean("/" + r.URL.Path)
	rel := strings.TrimPrefix(name, "/")
	if rel == "" {
		rel = "."
	}
	for _, part := range strings.Split(rel, "/") {
		if part != "." && strings.HasPrefix(part, ".") {
			http.NotFound(w, r)
			return
		}
	}
	info, err := fs.Stat(h.fsys, rel)
	if err != nil {
		http.NotFound(w, r) // also whatever lies outside the root
		return
	}
	if info.IsDir() {
		if _, err := fs.Stat(h.fsys, path.Join(rel, "index.html")); err != nil {
			http.NotFound(w, r)
			return
		}
	}
	h.files.ServeHTTP(w, r)
}
