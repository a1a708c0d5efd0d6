// The workers and stats page: the live worker processes with their heartbeats and active jobs,
// the queue, jobs by status and throughput. The API has no stream for these, so the page reads
// them again every few seconds while it is open and the tab is visible.
import type { GetStatsResponse, JobCounts, Worker } from "../../gen/ts/src/gen/pipeline/v1/system_pb.js";
import { api } from "./api.js";
import { ago, date, errorBox, h, num, protoDuration, replace } from "./dom.js";

const refreshMs = 5000;

export function workersPage(main: HTMLElement): () => void {
  const stats = h("div", { id: "stats" }, h("p", { class: "muted" }, "Loading…"));
  const workers = h("div", { class: "table-wrap", id: "workers" });
  const updated = h("span", { class: "muted small", "aria-live": "off" });
  let timer: number | undefined;
  let alive = true;
  const load = async () => {
    window.clearTimeout(timer);
    try {
      const [s, w] = await Promise.all([api.stats(), api.workers()]);
      if (!alive) return;
      replace(stats, statsView(s));
      replace(workers, workersTable(w.workers));
      replace(updated, `Updated ${new Date().toLocaleTimeString("en-GB")}`);
    } catch (e) {
      replace(stats, errorBox(e));
    }
    if (alive) timer = window.setTimeout(() => void (document.hidden ? undefined : load()), refreshMs);
  };
  const onVisible = () => {
    if (!document.hidden) void load();
  };
  document.addEventListener("visibilitychange", onVisible);
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Workers & stats"), updated, h("button", { type: "button", class: "secondary", onclick: () => void load() }, "Refresh")),
    stats,
    h("h2", {}, "Workers"),
    workers,
  );
  void load();
  return () => {
    alive = false;
    window.clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}

function tile(label: string, value: string, sub?: string): HTMLElement {
  return h("div", { class: "tile" }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-label" }, label), sub && h("div", { class: "muted small" }, sub));
}

function countsLine(c: JobCounts | undefined): string {
  if (!c) return "—";
  return `${num(c.pending)} pending · ${num(c.inProgress)} running · ${num(c.completed)} completed · ${num(c.failed)} failed · ${num(c.cancelled)} cancelled`;
}

function statsView(s: GetStatsResponse): HTMLElement {
  const q = s.queue;
  const t = s.throughput;
  const w = s.workers;
  return h(
    "div",
    {},
    h(
      "div",
      { class: "tiles" },
      tile("documents queued", num(q?.documentsQueued ?? 0n), `${num(q?.batchesQueued ?? 0n)} batches queued, ${num(q?.batchesRunning ?? 0n)} running`),
      tile("queue messages", num(q?.messagesWaiting ?? 0n), `${num(q?.messagesInFlight ?? 0n)} in flight, ${num(q?.messagesDelayed ?? 0n)} delayed; oldest ${protoDuration(q?.oldestMessageAge)}`),
      tile("documents / s", (t?.documentsPerSecond ?? 0).toFixed(1), `${num(t?.documents ?? 0n)} in the last ${protoDuration(t?.window)} (${num(t?.failed ?? 0n)} failed)`),
      tile("workers", num(w?.workers ?? 0), `${num(w?.busySlots ?? 0)} of ${num(w?.totalSlots ?? 0)} slots busy`),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Jobs"),
      h("dd", {}, countsLine(s.jobs)),
      h("dt", {}, "Crawl jobs"),
      h("dd", {}, countsLine(s.crawlJobs)),
      h("dt", {}, "Processing jobs"),
      h("dd", {}, countsLine(s.processJobs)),
      h("dt", {}, "Oldest batch waiting"),
      h("dd", {}, protoDuration(q?.oldestBatchAge)),
      h("dt", {}, "Server version"),
      h("dd", {}, s.serverVersion || "—"),
      h("dt", {}, "As of"),
      h("dd", {}, date(s.time)),
    ),
  );
}

function workersTable(ws: Worker[]): HTMLElement {
  if (ws.length === 0) return h("p", { class: "muted" }, "No live workers: nothing will be processed until one starts.");
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, "Workers"),
    h("thead", {}, h("tr", {}, ...["Worker", "Host", "Version", "Started", "Last heartbeat", "Slots", "Active jobs", "Processed", "Failed"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      ...ws.map((w) =>
        h(
          "tr",
          { "data-worker-id": w.workerId },
          h("td", { "data-label": "Worker", class: "mono" }, w.workerId),
          h("td", { "data-label": "Host" }, `${w.host} (pid ${w.pid})`),
          h("td", { "data-label": "Version" }, w.version || "—"),
          h("td", { "data-label": "Started" }, date(w.startTime)),
          h("td", { "data-label": "Last heartbeat" }, ago(w.lastHeartbeatTime)),
          h("td", { "data-label": "Slots", class: "num" }, `${w.busySlots} / ${w.totalSlots}`),
          h(
            "td",
            { "data-label": "Active jobs" },
            w.activeJobIds.length ? h("span", {}, ...w.activeJobIds.flatMap((id, i) => [i ? ", " : "", h("a", { href: `#/jobs/${id}`, class: "mono id" }, id)])) : "—",
          ),
          h("td", { "data-label": "Processed", class: "num" }, num(w.documentsProcessed)),
          h("td", { "data-label": "Failed", class: "num" }, num(w.documentsFailed)),
        ),
      ),
    ),
  );
}
