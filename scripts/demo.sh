#!/usr/bin/env bash
# The main job on a fresh machine: build, run `pipeline dev` (server, workers, embedded vector
# store) on the local Postgres and Redis, ingest the shipped demo corpus with a live progress
# bar, search it, and keep the service running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

go build -o pipeline ./cmd/pipeline
mkdir -p .build
export PIPELINE_DATA_DIR="${PIPELINE_DATA_DIR:-$PWD/.build/demo-data}"
grpc="${PIPELINE_GRPC_ADDR:-127.0.0.1:9090}"
http="${PIPELINE_HTTP_ADDR:-127.0.0.1:8080}"
export PIPELINE_SERVER="$grpc"

./pipeline dev >.build/demo-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
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

if [ "${DEMO_EXIT:-}" = 1 ]; then exit 0; fi
echo
echo "The service keeps running: try the README's curl and grpcurl examples. Ctrl-C stops it."
wait $server
