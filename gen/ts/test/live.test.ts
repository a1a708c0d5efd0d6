// A live test of the client: run by e2e/typescript_test.go (`make test`) against a real server
// whose gRPC address is in PIPELINE_TEST_URL. It ingests documents, follows the job's WatchJob
// stream to COMPLETED, searches, and checks the error codes a caller would handle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect, ContentService, JobService, JobStatus, SearchService } from "../src/index.js";

const baseUrl = process.env.PIPELINE_TEST_URL;
if (!baseUrl) {
  throw new Error("PIPELINE_TEST_URL is not set: this test runs from e2e/typescript_test.go");
}
const options = { baseUrl, apiKey: process.env.PIPELINE_TEST_API_KEY };
const content = connect(ContentService, options);
const jobs = connect(JobService, options);
const search = connect(SearchService, options);

function page(i: number): { uri: string; content: string } {
  return {
    uri: `guide/page-${i}.md`,
    content: `# Page ${i}\n\nThis page explains tsmarker${i} in a few words.\n\n## More\n\nA second section about tsmarker${i}.\n`,
  };
}

async function expectCode(call: Promise<unknown>, code: Code, field?: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    const ce = ConnectError.from(err);
    assert.equal(ce.code, code, `code of ${ce.message}`);
    if (field) {
      assert.match(ce.message, new RegExp(field), "the message names the field");
    }
    return true;
  });
}

test("ingest, watch to COMPLETED, search", async () => {
  const { source } = await content.createSource({ name: "ts-live" });
  assert.ok(source?.sourceId, "createSource returns the source");
  const docs = [page(1), page(2), page(3)];
  const ingested = await content.ingestDocuments({ sourceId: source.sourceId, documents: docs });
  const jobId = ingested.job?.jobId;
  assert.ok(jobId, "ingestDocuments returns the job");
  assert.equal(ingested.documents.length, docs.length);

  // Follow the stream until the job is terminal: progress never goes back, and the last state
  // is COMPLETED with every document processed.
  let last = -1n;
  let seen = 0;
  let final: JobStatus | undefined;
  for await (const { job } of jobs.watchJob({ jobId })) {
    assert.ok(job, "every event carries the job");
    seen++;
    const processed = job.processing?.processedCount ?? 0n;
    assert.ok(processed >= last, `processed went back from ${last} to ${processed}`);
    last = processed;
    final = job.status;
  }
  assert.ok(seen >= 1, "the stream sent at least one event");
  assert.equal(final, JobStatus.COMPLETED, `final status ${final === undefined ? "none" : JobStatus[final]}`);
  assert.equal(last, BigInt(docs.length));

  const { job } = await jobs.getJob({ jobId });
  assert.equal(job?.status, JobStatus.COMPLETED);
  assert.equal(job?.processing?.errorCount, 0n);
  assert.ok((job?.processing?.chunkCount ?? 0n) >= BigInt(docs.length));

  const found = await search.search({ query: "tsmarker2", topK: 3 });
  assert.ok(found.results.length > 0, "search finds the ingested page");
  assert.equal(found.results[0].documentId, ingested.documents[1].documentId);
  assert.match(found.results[0].text, /tsmarker2/);
  assert.equal(found.results[0].uri, "guide/page-2.md");
});

test("errors carry gRPC codes", async () => {
  await expectCode(jobs.getJob({ jobId: "00000000-0000-4000-8000-000000000000" }), Code.NotFound);
  await expectCode(jobs.getJob({ jobId: "not-a-uuid" }), Code.InvalidArgument, "job_id");
  // A stream reports a missing job as an error of the stream, not as an empty stream.
  await expectCode(
    (async () => {
      for await (const _ of jobs.watchJob({ jobId: "00000000-0000-4000-8000-000000000001" })) {
        // no event is expected
      }
    })(),
    Code.NotFound,
  );
});
