// The jobs pages: the list with filters and live progress bars, and one job's detail with its
// per-document results and errors, cancel and "retry failed documents". Progress comes from
// WatchJob streams, one per job still running on the page; nothing polls.
import {
  DocumentResultStatus,
  ErrorKind,
  JobStatus,
  JobType,
  type DocumentResult,
  type Job,
} from "../../gen/ts/src/gen/pipeline/v1/jobs_pb.js";
import { allSources, api, terminal, watchJob } from "./api.js";
import { badge, date, enumName, errorBox, h, navigate, num, protoDuration, replace } from "./dom.js";
import { ProgressView } from "./progress.js";

/**
 * At most this many rows of the list are watched live at once. Over plain HTTP a browser keeps
 * six connections to a host and every open WatchJob holds one, so more would starve the page's
 * other calls; the rest of the running jobs show their state as listed, and their own page
 * follows them live.
 */
const maxWatches = 3;

export function jobsPage(main: HTMLElement, params: URLSearchParams): () => void {
  const stops: (() => void)[] = [];
  const stopAll = () => stops.splice(0).forEach((s) => s());
  const sourceSel = h("select", { id: "filter-source" }, h("option", { value: "" }, "All sources"));
  const typeSel = h("select", { id: "filter-type" }, h("option", { value: "" }, "All types"), ...[JobType.PROCESS, JobType.CRAWL].map((t) => h("option", { value: `JOB_TYPE_${JobType[t]}` }, enumName(JobType, t))));
  const statusSel = h(
    "select",
    { id: "filter-status" },
    h("option", { value: "" }, "All statuses"),
    ...[JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED].map((s) => h("option", { value: `JOB_STATUS_${JobStatus[s]}` }, enumName(JobStatus, s))),
  );
  sourceSel.value = params.get("source_id") ?? "";
  typeSel.value = params.get("type") ?? "";
  statusSel.value = params.get("status") ?? "";
  const body = h("tbody");
  const table = h(
    "table",
    { id: "jobs" },
    h("caption", { class: "visually-hidden" }, "Jobs"),
    h("thead", {}, h("tr", {}, ...["Job", "Type", "Status", "Source", "Progress", "Created"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const more = h("div");
  const errors = h("div");
  const names = new Map<string, string>();

  const applyFilters = () => {
    const q = new URLSearchParams();
    if (sourceSel.value) q.set("source_id", sourceSel.value);
    if (typeSel.value) q.set("type", typeSel.value);
    if (statusSel.value) q.set("status", statusSel.value);
    navigate(`#/jobs${q.size ? `?${q}` : ""}`);
  };
  for (const s of [sourceSel, typeSel, statusSel]) s.addEventListener("change", applyFilters);

  const addRows = (jobs: Job[]) => {
    for (const job of jobs) {
      const progress = new ProgressView(job, false);
      const status = h("td", { "data-label": "Status" }, badge(JobStatus, job.status));
      body.append(
        h(
          "tr",
          { "data-job-id": job.jobId },
          h("td", { "data-label": "Job" }, h("a", { href: `#/jobs/${job.jobId}`, class: "mono id" }, job.jobId)),
          h("td", { "data-label": "Type" }, enumName(JobType, job.type)),
          status,
          h("td", { "data-label": "Source" }, names.get(job.sourceId) ?? h("span", { class: "mono id" }, job.sourceId)),
          h("td", { "data-label": "Progress", class: "progress-cell" }, progress.el),
          h("td", { "data-label": "Created" }, date(job.createTime)),
        ),
      );
      if (!terminal(job) && stops.length < maxWatches) {
        stops.push(
          watchJob(
            job.jobId,
            (j) => {
              progress.update(j);
              replace(status, badge(JobStatus, j.status));
            },
            () => undefined,
          ),
        );
      }
    }
  };

  const load = async (token: string) => {
    try {
      const r = await api.listJobs({ sourceId: sourceSel.value, type: typeSel.value, status: statusSel.value, pageToken: token });
      addRows(r.jobs);
      if (!token && r.jobs.length === 0) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No jobs match.")));
      replace(more, r.nextPageToken && h("button", { type: "button", class: "secondary", onclick: () => void load(r.nextPageToken) }, "Load more"));
    } catch (e) {
      replace(errors, errorBox(e));
    }
  };

  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Jobs")),
    h(
      "div",
      { class: "filters", role: "group", "aria-label": "Filters" },
      h("label", { for: sourceSel.id }, "Source"),
      sourceSel,
      h("label", { for: typeSel.id }, "Type"),
      typeSel,
      h("label", { for: statusSel.id }, "Status"),
      statusSel,
    ),
    errors,
    h("div", { class: "table-wrap" }, table),
    more,
  );
  void (async () => {
    try {
      const sources = await allSources();
      for (const s of sources) {
        names.set(s.sourceId, s.name || s.url);
        sourceSel.append(h("option", { value: s.sourceId }, s.name || s.url));
      }
      sourceSel.value = params.get("source_id") ?? "";
    } catch {
      // The list below says what is wrong.
    }
    await load("");
  })();
  return stopAll;
}

export function jobDetailPage(main: HTMLElement, _params: URLSearchParams, jobId: string): () => void {
  let stop: (() => void) | undefined;
  let alive = true;
  const head = h("div", { class: "page-head" }, h("h1", {}, "Job ", h("span", { class: "mono" }, jobId)));
  const facts = h("dl", { class: "facts", id: "job-facts" });
  const actions = h("div", { class: "actions" });
  const actionError = h("div");
  const watchNote = h("div", { class: "muted small", "aria-live": "polite" });
  const results = h("div", { class: "table-wrap", id: "job-documents" }, h("p", { class: "muted" }, "Loading…"));
  let progress: ProgressView | undefined;
  const progressSlot = h("div", { id: "job-progress" });
  let lastCounts = "";
  let resultsTimer: number | undefined;
  let loads = 0;
  let resultsFailed = false;
  let uris = new Map<string, string>();
  let sourceName = "";
  let current: Job | undefined;

  const render = (job: Job) => {
    current = job;
    if (!progress) {
      progress = new ProgressView(job, true);
      progressSlot.append(progress.el);
    } else {
      progress.update(job);
    }
    const p = job.processing;
    const c = job.crawl;
    replace(
      facts,
      ...fact("Status", badge(JobStatus, job.status)),
      ...fact("Type", enumName(JobType, job.type)),
      ...fact("Source", h("a", { href: `#/jobs?source_id=${encodeURIComponent(job.sourceId)}`, title: "the source's jobs" }, sourceName || job.sourceId)),
      ...(p
        ? [...fact("Documents", num(p.documentCount)), ...fact("Processed", num(p.processedCount)), ...fact("Failed", num(p.errorCount)), ...fact("Chunks", num(p.chunkCount))]
        : []),
      ...(c ? [...fact("Pages discovered", num(c.pagesDiscovered)), ...fact("Pages fetched", num(c.pagesFetched)), ...fact("Pages failed", num(c.pagesFailed))] : []),
      ...fact("Created", date(job.createTime)),
      ...fact("Started", date(job.startTime)),
      ...fact("Finished", date(job.finishTime)),
      ...fact("Timeout", protoDuration(job.timeout)),
      ...(job.retryOfJobId ? fact("Retry of", h("a", { href: `#/jobs/${job.retryOfJobId}`, class: "mono" }, job.retryOfJobId)) : []),
      ...(job.error ? fact("Error", h("span", { class: "error" }, job.error)) : []),
    );
    const active = !terminal(job);
    const retryable = job.status === JobStatus.FAILED || job.status === JobStatus.CANCELLED || (job.status === JobStatus.COMPLETED && (p?.errorCount ?? 0n) > 0n);
    replace(
      actions,
      active &&
        h(
          "button",
          {
            type: "button",
            class: "danger",
            id: "cancel-job",
            onclick: async () => {
              try {
                const r = await api.cancelJob(jobId);
                if (r.job) render(r.job);
              } catch (e) {
                replace(actionError, errorBox(e));
              }
            },
          },
          "Cancel job",
        ),
      retryable &&
        h(
          "button",
          {
            type: "button",
            id: "retry-job",
            onclick: async () => {
              try {
                const r = await api.retryJob(jobId);
                if (r.job) navigate(`#/jobs/${r.job.jobId}`);
              } catch (e) {
                replace(actionError, errorBox(e));
              }
            },
          },
          "Retry failed documents",
        ),
    );
    // The per-document table follows the counters: reloaded when they move (at most once a
    // second) and when the job ends.
    const counts = `${job.status}/${p?.processedCount}/${p?.errorCount}`;
    if (counts !== lastCounts || resultsFailed) {
      resultsFailed = false;
      lastCounts = counts;
      if (terminal(job)) void loadResults(job);
      else if (resultsTimer === undefined) resultsTimer = window.setTimeout(() => void loadResults(job), 1000);
    }
  };

  const loadResults = async (job: Job) => {
    window.clearTimeout(resultsTimer);
    resultsTimer = undefined;
    if (job.type !== JobType.PROCESS) {
      replace(results, h("p", { class: "muted" }, "A crawl job's pages become documents of the processing jobs it starts; see the source's jobs."));
      return;
    }
    // While the job runs the table shows its first page and is read again as it moves; once
    // it ended, up to 1,000 results. A slower earlier read never overwrites a later one.
    const seq = ++loads;
    const limit = terminal(job) ? 1000 : 100;
    try {
      const rows: DocumentResult[] = [];
      let token = "";
      do {
        const r = await api.jobDocuments(jobId, token);
        rows.push(...r.results);
        token = r.nextPageToken;
      } while (token && rows.length < limit);
      if (uris.size === 0) uris = await documentUris(job.sourceId);
      if (!alive || seq !== loads) return;
      // Failures first: they are what the page is opened for.
      rows.sort((a, b) => Number(b.status === DocumentResultStatus.FAILED) - Number(a.status === DocumentResultStatus.FAILED));
      replace(results, resultsTable(rows, uris));
    } catch (e) {
      // Read again with the next update the watch brings (after an outage, its first).
      resultsFailed = true;
      if (seq === loads) replace(results, errorBox(e));
    }
  };

  main.append(head, progressSlot, watchNote, actions, actionError, facts, h("h2", {}, "Documents"), results);
  void (async () => {
    try {
      const r = await api.getJob(jobId);
      if (!alive || !r.job) return;
      const job = r.job;
      render(job);
      void api
        .getSource(job.sourceId)
        .then((s) => {
          sourceName = s.source?.name || s.source?.url || "";
          if (alive && sourceName && current) render(current);
        })
        .catch(() => undefined);
      if (!terminal(r.job)) {
        replace(watchNote, "Live: following the job's progress stream.");
        stop = watchJob(
          jobId,
          (j) => {
            replace(watchNote, terminal(j) ? "" : "Live: following the job's progress stream.");
            render(j);
          },
          (err) => replace(watchNote, h("span", { class: "error" }, `Progress stream interrupted (${err.message}); reconnecting…`)),
        );
      }
    } catch (e) {
      replace(results);
      main.insertBefore(errorBox(e), facts);
    }
  })();
  return () => {
    alive = false;
    stop?.();
    window.clearTimeout(resultsTimer);
  };
}

function fact(label: string, value: Node | string): Node[] {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** documentUris maps the source's document ids to their uris (the first 1,000). */
async function documentUris(sourceId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token = "";
  do {
    const r = await api.listDocuments(sourceId, token);
    for (const d of r.documents) out.set(d.documentId, d.uri);
    token = r.nextPageToken;
  } while (token && out.size < 1000);
  return out;
}

function resultsTable(rows: DocumentResult[], uris: Map<string, string>): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, "No documents.");
  return h(
    "table",
    { id: "results" },
    h("caption", { class: "visually-hidden" }, "Per-document results"),
    h("thead", {}, h("tr", {}, ...["Document", "Status", "Chunks", "Attempts", "Error kind", "Error"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      ...rows.map((r) =>
        h(
          "tr",
          { "data-document-id": r.documentId, "data-status": DocumentResultStatus[r.status] ?? "" },
          h("td", { "data-label": "Document" }, uris.get(r.documentId) ?? h("span", { class: "mono" }, r.documentId)),
          h("td", { "data-label": "Status" }, badge(DocumentResultStatus, r.status)),
          h("td", { "data-label": "Chunks", class: "num" }, num(r.chunkCount)),
          h("td", { "data-label": "Attempts", class: "num" }, String(r.attempts)),
          h("td", { "data-label": "Error kind" }, r.errorKind ? enumName(ErrorKind, r.errorKind) : "—"),
          h("td", { "data-label": "Error", class: r.lastError ? "error" : "" }, r.lastError || "—"),
        ),
      ),
    ),
  );
}
