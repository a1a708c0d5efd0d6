// Builds the console into dist/: src/main.ts bundled (with the generated protobuf-es messages
// from gen/ts and @bufbuild/protobuf from this folder's node_modules) into app.js, and
// index.html and style.css copied. The output depends only on the sources and the pinned
// packages (no hashes, dates or absolute paths), so `make check-web` can rebuild it and diff.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

// The generated files under gen/ts import @bufbuild/protobuf; resolve it from web/ so the bundle
// never depends on whether gen/ts/node_modules is installed.
const protobufFromWeb = {
  name: "protobuf-from-web",
  setup(build) {
    build.onResolve({ filter: /^@bufbuild\/protobuf(\/.*)?$/ }, (args) => {
      if (args.resolveDir === here || args.pluginData === "web") return undefined;
      return build.resolve(args.path, { kind: args.kind, resolveDir: here, pluginData: "web" });
    });
  },
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  bundle: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  plugins: [protobufFromWeb],
});
for (const f of ["index.html", "style.css"]) {
  copyFileSync(join(here, "src", f), join(dist, f));
}
