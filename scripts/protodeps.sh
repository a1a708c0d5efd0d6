#!/usr/bin/env bash
# Copies the third-party .proto files the API imports into .build/protodeps, from pinned packages:
# googleapis from the google-proto-files npm package (tools/package-lock.json), protovalidate from the
# github.com/bufbuild/protovalidate Go module and the OpenAPI options from grpc-gateway (go.mod).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOVALIDATE_VERSION=v1.2.2
GATEWAY_VERSION=v2.33.0 # keep equal to the protoc-gen-grpc-gateway version in tools/go.mod
out=.build/protodeps
rm -rf "$out"
mkdir -p "$out/google/api" "$out/buf/validate" "$out/protoc-gen-openapiv2/options"

gp=tools/node_modules/google-proto-files
[ -d "$gp" ] || { echo "protodeps: $gp missing; run make tools" >&2; exit 1; }
for f in annotations http field_behavior httpbody; do
  cp "$gp/google/api/$f.proto" "$out/google/api/"
done

pv=$(go mod download -json "github.com/bufbuild/protovalidate@$PROTOVALIDATE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
cp "$pv/proto/protovalidate/buf/validate/validate.proto" "$out/buf/validate/"

gw=$(go mod download -json "github.com/grpc-ecosystem/grpc-gateway/v2@$GATEWAY_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
cp "$gw/protoc-gen-openapiv2/options/annotations.proto" "$gw/protoc-gen-openapiv2/options/openapiv2.proto" \
  "$out/protoc-gen-openapiv2/options/"
chmod -R u+w "$out"
