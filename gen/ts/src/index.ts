// Entry point of the generated pipeline client. The messages and service descriptors under ./gen
// are generated from api/proto by protoc-gen-es; this file only re-exports them and adds a helper
// that builds a gRPC client with an API key.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";

export * from "./gen/pipeline/v1/jobs_pb.js";
export * from "./gen/pipeline/v1/content_pb.js";
export * from "./gen/pipeline/v1/search_pb.js";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** gRPC address of the server, e.g. "http://127.0.0.1:9090". */
  baseUrl: string;
  /** API key, sent as `authorization: Bearer <key>`; omit when the server has none. */
  apiKey?: string;
}

/** connect returns a client of one service (JobService, ContentService, SearchService) over gRPC. */
export function connect<T extends DescService>(service: T, options: ConnectOptions): Client<T> {
  const interceptors: Interceptor[] = [];
  if (options.apiKey) {
    const header = `Bearer ${options.apiKey}`;
    interceptors.push((next) => async (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  return createClient(service, createGrpcTransport({ baseUrl: options.baseUrl, interceptors }));
}
