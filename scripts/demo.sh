#!/usr/bin/env bash
# The main job on a fresh machine: build, run `pipeline dev` (server, workers, embedded vector
# store) on the local Postgres and Redis, ingest the shipped demo corpus with a live progress
# bar, search it; then serve the sample web site (examples/sample-site) on this machine, add it
# as a web source and watch it being crawled and processed, search it, and keep the service
# running until Ctrl-C. DEMO_EXIT=1 stops after the searches.
#
# Settings: PIPELINE_GRPC_ADDR, PIPELINE_HTTP_ADDR, PIPELINE_DATA_DIR and every other PIPELINE_*
# setting of `pipeline dev`; PIPELINE_SAMPLE_PORT is the sample site's port (default 8099).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

go build -o pipeline ./cmd/pipeline
mkdir -p .build
export PIPELINE_DATA_DIR="${PIPELINE_DATA_DIR:-$PWD/.build/demo-data}"
grpc="${PIPELINE_GRPC_ADDR:-127.0.0.1:9090}"
http="${PIPELINE_HTTP_ADDR:-127.0.0.1:8080}"
sample_port="${PIPELINE_SAMPLE_PORT:-8099}"
sample_url="http://127.0.0.1:$sample_port/"
export PIPELINE_SERVER="$grpc"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

./pipeline dev >.build/demo-server.log 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do
  if curl -sf "http://$http/readyz" >/dev/null; then break; fi
  if ! kill -0 $server 2>/dev/null; then
    echo "pipeline dev did not start; its log:" >&2; cat .build/demo-server.log >&2; exit 1
  fi
  sleep 0.2
done
echo "pipeline dev is running (gRPC $grpc, REST http://$http; log in .build/demo-server.log)"

./pipeline ingest examples/demo-corpus --source demo
for q in "install on Linux" "how do I restore a backup" "rotate the encryption key"; do
  echo
  echo "\$ pipeline search \"$q\" --top-k 3"
  ./pipeline search "$q" --top-k 3
done

# The web part: a static site on this machine, crawled like any other (`pipeline dev` lets the
# crawler fetch loopback addresses).
./pipeline static examples/sample-site --addr "127.0.0.1:$sample_port" >.build/demo-static.log 2>&1 &
static=$!
pids+=("$static")
for _ in $(seq 1 50); do
  if curl -sf "${sample_url}robots.txt" >/dev/null; then break; fi
  if ! kill -0 $static 2>/dev/null; then
    echo "pipeline static did not start (is port $sample_port free? set PIPELINE_SAMPLE_PORT); its log:" >&2
    cat .build/demo-static.log >&2; exit 1
  fi
  sleep 0.1
done
echo
echo "the sample site is served at $sample_url (log in .build/demo-static.log)"

# A source from an earlier run may point at another port: start afresh.
for _ in $(seq 1 20); do
  ./pipeline sources get sample-site >/dev/null 2>&1 || break
  ./pipeline sources delete sample-site --yes
done

echo
echo "\$ pipeline sources add $sample_url --name sample-site"
./pipeline sources add "$sample_url" --name sample-site
id=$(./pipeline sources get sample-site --output json | sed -nE 's/.*"source_id": *"([^"]+)".*/\1/p')

echo
echo "\$ curl -s http://$http/v1/sources/$id"
curl -s "http://$http/v1/sources/$id"
echo

for q in "when may I use the hose during a drought" "how much does a raised bed plot cost"; do
  echo
  echo "\$ pipeline search \"$q\" --source sample-site --top-k 3"
  ./pipeline search "$q" --source sample-site --top-k 3
done

if [ "${DEMO_EXIT:-}" = 1 ]; then exit 0; fi
echo
echo "The service keeps running: open the web console at http://$http/ (sources, live jobs,"
echo "search), try the README's curl and grpcurl examples, or"
echo "  ./pipeline sources list    ./pipeline sources refresh sample-site"
echo "Ctrl-C stops it."
wait $server
