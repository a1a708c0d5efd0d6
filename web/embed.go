// Package web holds the built web console (dist/, made by `make web` from the TypeScript sources
// in src/) for the server to serve at /. It knows nothing of the server; server/console.go
// decides how the files are served.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Dist is the built console: index.html, app.js and style.css at its root.
var Dist, _ = fs.Sub(dist, "dist")
