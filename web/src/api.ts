// The console's one door to the server: the REST/JSON API of grpc-gateway under /v1/ on the same
// origin. Responses are parsed with the generated protobuf-es schemas (gen/ts), so every page
// works with typed messages (enums as numbers, int64 as bigint, timestamps as messages) and a
// field renamed in the protos breaks the type-check, not the page.
import { fromJson, toJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import {
  CreateSourceRequestSchema,
  CreateSourceResponseSchema,
  GetSourceResponseSchema,
  IngestDocumentsResponseSchema,
  ListDocumentsResponseSchema,
  ListSourcesResponseSchema,
  RefreshSourceResponseSchema,
  type CreateSourceRequest,
  type DocumentInput,
  type Source,
} from "../../gen/ts/src/gen/pipeline/v1/content_pb.js";
import {
  CancelJobResponseSchema,
  GetJobResponseSchema,
  JobStatus,
  ListJobDocumentsResponseSchema,
  ListJobsResponseSchema,
  RetryJobResponseSchema,
  WatchJobResponseSchema,
  type Job,
} from "../../gen/ts/src/gen/pipeline/v1/jobs_pb.js";
import { SearchRequestSchema, SearchResponseSchema, type SearchRequest } from "../../gen/ts/src/gen/pipeline/v1/search_pb.js";
import { GetStatsResponseSchema, ListWorkersResponseSchema } from "../../gen/ts/src/gen/pipeline/v1/system_pb.js";

const keyStorage = "pipeline.apiKey";

/** The API key sent as `Authorization: Bearer`, kept in this browser's localStorage. */
export function apiKey(): string {
  try {
    return localStorage.getItem(keyStorage) ?? "";
  } catch {
    return "";
  }
}

export function setApiKey(key: string): void {
  try {
    if (key) localStorage.setItem(keyStorage, key);
    else localStorage.removeItem(keyStorage);
  } catch {
    // Private mode without storage: the key lasts until the page closes.
  }
}

/** Why a call failed, in the words the pages show. */
export type Failure = "unreachable" | "unauthorized" | "forbidden" | "other";

/** ApiError is a failed call: the gRPC status the gateway returned, or the network's refusal. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly failure: Failure,
    readonly httpStatus = 0,
  ) {
    super(message);
  }
}

/** Listeners told of every call's outcome, so the shell can show "server down" or ask for a key. */
const listeners = new Set<(err: ApiError | null) => void>();
export function onCallOutcome(fn: (err: ApiError | null) => void): void {
  listeners.add(fn);
}
function report(err: ApiError | null): void {
  for (const fn of listeners) fn(err);
}

function headers(body: boolean): Headers {
  const h = new Headers({ Accept: "application/json" });
  if (body) h.set("Content-Type", "application/json");
  const key = apiKey();
  if (key) h.set("Authorization", `Bearer ${key}`);
  return h;
}

async function errorOf(resp: Response): Promise<ApiError> {
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = (await resp.json()) as { message?: string };
    if (body.message) message = body.message;
  } catch {
    // Not the gateway's JSON (a proxy's page): keep the status line.
  }
  const failure: Failure = resp.status === 401 ? "unauthorized" : resp.status === 403 ? "forbidden" : "other";
  return new ApiError(message, failure, resp.status);
}

async function send(method: string, path: string, body?: JsonValue, signal?: AbortSignal): Promise<Response> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    const err = new ApiError("The server does not answer: is it running?", "unreachable");
    report(err);
    throw err;
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (err.failure !== "other") report(err);
    // 502-504 come from a proxy in front: the server behind it is gone.
    else if (resp.status >= 502 && resp.status <= 504) report(new ApiError(err.message, "unreachable", resp.status));
    else report(null);
    throw err;
  }
  report(null);
  return resp;
}

async function call<D extends DescMessage>(schema: D, method: string, path: string, body?: JsonValue): Promise<MessageShape<D>> {
  const resp = await send(method, path, body);
  return fromJson(schema, (await resp.json()) as JsonValue, { ignoreUnknownFields: true });
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "" && v !== 0) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

const enc = encodeURIComponent;

export const api = {
  listSources: (pageToken = "") => call(ListSourcesResponseSchema, "GET", `/v1/sources${query({ page_size: 100, page_token: pageToken })}`),
  createSource: (req: CreateSourceRequest) =>
    call(CreateSourceResponseSchema, "POST", "/v1/sources", toJson(CreateSourceRequestSchema, req, { useProtoFieldName: true })),
  getSource: (id: string) => call(GetSourceResponseSchema, "GET", `/v1/sources/${enc(id)}`),
  deleteSource: (id: string) => send("DELETE", `/v1/sources/${enc(id)}`).then(() => undefined),
  refreshSource: (id: string) => call(RefreshSourceResponseSchema, "POST", `/v1/sources/${enc(id)}:refresh`, {}),
  ingest: (sourceId: string, docs: DocumentInput[]) =>
    call(IngestDocumentsResponseSchema, "POST", `/v1/sources/${enc(sourceId)}/documents`, {
      documents: docs.map((d) => ({ uri: d.uri, content: d.content, content_type: d.contentType })),
    }),
  listDocuments: (sourceId: string, pageToken = "") =>
    call(ListDocumentsResponseSchema, "GET", `/v1/sources/${enc(sourceId)}/documents${query({ page_size: 100, page_token: pageToken })}`),
  listJobs: (f: { sourceId?: string; type?: string; status?: string; pageSize?: number; pageToken?: string }) =>
    call(
      ListJobsResponseSchema,
      "GET",
      `/v1/jobs${query({ source_id: f.sourceId, type: f.type, status: f.status, page_size: f.pageSize ?? 50, page_token: f.pageToken })}`,
    ),
  getJob: (id: string) => call(GetJobResponseSchema, "GET", `/v1/jobs/${enc(id)}`),
  jobDocuments: (id: string, pageToken = "") =>
    call(ListJobDocumentsResponseSchema, "GET", `/v1/jobs/${enc(id)}/documents${query({ page_size: 100, page_token: pageToken })}`),
  cancelJob: (id: string) => call(CancelJobResponseSchema, "POST", `/v1/jobs/${enc(id)}:cancel`, {}),
  retryJob: (id: string) => call(RetryJobResponseSchema, "POST", `/v1/jobs/${enc(id)}:retry`, {}),
  search: (req: SearchRequest) => call(SearchResponseSchema, "POST", "/v1/search", toJson(SearchRequestSchema, req, { useProtoFieldName: true })),
  workers: () => call(ListWorkersResponseSchema, "GET", "/v1/workers"),
  stats: () => call(GetStatsResponseSchema, "GET", "/v1/stats"),
};

/** allSources lists the sources, page after page, up to 1,000. */
export async function allSources(): Promise<Source[]> {
  const out: Source[] = [];
  let token = "";
  do {
    const r = await api.listSources(token);
    out.push(...r.sources);
    token = r.nextPageToken;
  } while (token && out.length < 1000);
  return out;
}

export function terminal(job: Job): boolean {
  return job.status === JobStatus.COMPLETED || job.status === JobStatus.FAILED || job.status === JobStatus.CANCELLED;
}

/**
 * watchJob follows a job over WatchJob: grpc-gateway streams a server-streaming RPC as one JSON
 * object per line (`{"result": {...}}` or `{"error": {...}}`) on a chunked response, read here as
 * it arrives. The stream ends after the terminal state; a broken stream of a job still running is
 * opened again after a pause that grows. Returns a function that stops watching.
 */
export function watchJob(jobId: string, onJob: (job: Job) => void, onError: (err: ApiError) => void): () => void {
  const abort = new AbortController();
  let delay = 500;
  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      let last: Job | undefined;
      try {
        const resp = await send("GET", `/v1/jobs/${enc(jobId)}:watch`, undefined, abort.signal);
        if (!resp.body) throw new ApiError("This browser cannot read streamed responses.", "other");
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line) as { result?: JsonValue; error?: { message?: string; code?: number } };
            if (msg.error) throw new ApiError(msg.error.message ?? "watch failed", msg.error.code === 16 ? "unauthorized" : "other");
            if (msg.result) {
              const job = fromJson(WatchJobResponseSchema, msg.result, { ignoreUnknownFields: true }).job;
              if (job) {
                last = job;
                delay = 500;
                onJob(job);
              }
            }
          }
        }
        if (last && terminal(last)) return;
      } catch (e) {
        if (abort.signal.aborted) return;
        const err = e instanceof ApiError ? e : new ApiError(String(e), "unreachable");
        onError(err);
        if (err.failure === "unauthorized" || err.failure === "forbidden" || err.httpStatus === 404) return;
      }
      // The stream broke before the end (server restart, network): wait, then open it again.
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => abort.abort();
}
