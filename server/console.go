package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/pipeline-dev/pipeline/web"
)

// consoleRoute is the route label of the console's files in the HTTP metrics.
const consoleRoute = "console"

// consoleCSP keeps the console to its own origin: its script, its stylesheet and the API. No
// inline script, no external font or CDN, not framed.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// consoleFile is one file of the built console, held in memory with its gzipped form.
type consoleFile struct {
	name    string
	body    []byte
	gzipped []byte // nil when gzip does not make it smaller
	ctype   string
	etag    string
}

// withConsole puts the web console (package web, built from web/src) in front of api, the REST
// gateway: GET and HEAD of the console's files (/ is index.html) are answered here; everything
// else, /v1/ above all, goes to api unchanged, so unknown paths keep the gateway's JSON 404. The
// console addresses pages by the URL's fragment (#/jobs/<id>), so it needs no fallback route.
func withConsole(api http.Handler) http.Handler {
	files, err := consoleFiles(web.Dist)
	if err != nil {
		// The files are embedded at build time; failing to read them is a broken build.
		panic("web console: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			api.ServeHTTP(w, r)
			return
		}
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			h.route = consoleRoute
		}
		hd := w.Header()
		hd.Set("Content-Type", f.ctype)
		hd.Set("Cache-Control", "no-cache") // names carry no hash: revalidate by ETag
		hd.Set("Content-Security-Policy", consoleCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Vary", "Accept-Encoding")
		body, etag := f.body, f.etag
		if f.gzipped != nil && acceptsGzip(r) {
			body, etag = f.gzipped, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			hd.Set("Content-Encoding", "gzip")
		}
		hd.Set("ETag", etag)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
	})
}

// consoleFiles reads the console's files into memory, keyed by URL path.
func consoleFiles(dist fs.FS) (map[string]*consoleFile, error) {
	files := map[string]*consoleFile{}
	err := fs.WalkDir(dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &consoleFile{
			name:  p,
			body:  body,
			ctype: mime.TypeByExtension(path.Ext(p)),
			etag:  `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		if zw.Close() == nil && buf.Len() < len(body) {
			f.gzipped = buf.Bytes()
		}
		files["/"+p] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	index, ok := files["/index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	files["/"] = index
	return files, nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
