// The LangChain.js peers of the chunker case: reads every .md file of a directory once, then
// answers one JSON request per stdin line by splitting all of them with a fresh splitter and
// printing one JSON line: the time of the splitting alone (no start-up, no file reading), the
// chunk count, their total length, and on request the chunks themselves in a file.
//
// node split.mjs DIR CHUNK_SIZE CHUNK_OVERLAP
// request: {"splitter": "recursive" | "markdown", "chunksFile": "path" (optional)}
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RecursiveCharacterTextSplitter, MarkdownTextSplitter } from '@langchain/textsplitters';

const [dir, sizeArg, overlapArg] = process.argv.slice(2);
const chunkSize = Number(sizeArg);
const chunkOverlap = Number(overlapArg);
if (!dir || !(chunkSize > 0) || !(chunkOverlap >= 0)) {
  console.error('usage: node split.mjs DIR CHUNK_SIZE CHUNK_OVERLAP');
  process.exit(2);
}
const names = readdirSync(dir).filter((n) => n.endsWith('.md')).sort();
const docs = names.map((n) => readFileSync(join(dir, n), 'utf8'));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);

const splitters = {
  recursive: () => new RecursiveCharacterTextSplitter({ chunkSize, chunkOverlap }),
  markdown: () => new MarkdownTextSplitter({ chunkSize, chunkOverlap }),
};

console.log(JSON.stringify({ ready: true, docs: docs.length, bytes }));

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const req = JSON.parse(line);
    const make = splitters[req.splitter];
    if (!make) throw new Error(`unknown splitter ${req.splitter}`);
    const splitter = make();
    const out = new Array(docs.length);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < docs.length; i++) {
      out[i] = await splitter.splitText(docs[i]);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    let chunks = 0;
    let chars = 0;
    for (const doc of out) {
      chunks += doc.length;
      for (const c of doc) chars += c.length;
    }
    if (req.chunksFile) writeFileSync(req.chunksFile, JSON.stringify(out));
    reply = { ms, cpuMs: (cpu.user + cpu.system) / 1000, docs: docs.length, bytes, chunks, chars };
  } catch (err) {
    reply = { error: String(err && err.stack ? err.stack : err) };
  }
  console.log(JSON.stringify(reply));
}
