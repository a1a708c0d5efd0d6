// The sources page: the list (status, document and chunk counts, last crawl), adding a web source
// with its crawl options, uploading files or a folder, refresh and delete.
import { create } from "@bufbuild/protobuf";
import {
  CrawlOptionsSchema,
  CreateSourceRequestSchema,
  Crawler,
  DocumentInputSchema,
  SourceStatus,
  type DocumentInput,
  type Source,
} from "../../gen/ts/src/gen/pipeline/v1/content_pb.js";
import { allSources, api } from "./api.js";
import { badge, confirmDialog, date, errorBox, h, navigate, num, replace } from "./dom.js";

/** The files an upload takes, by lower-case extension (as `pipeline ingest` does). */
const contentTypes: Record<string, string> = {
  ".md": "text/markdown",
  ".markdown": "text/markdown",
  ".txt": "text/plain",
  ".html": "text/html",
  ".htm": "text/html",
};
const maxDocBytes = 10 << 20;
/** One IngestDocuments call carries at most this many documents and about this much text. */
const batchDocs = 1000;
const batchBytes = 4 << 20;

export function sourcesPage(main: HTMLElement): () => void {
  const list = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
  const listError = h("div");
  const { section: uploadSection, fillTargets } = uploadForm();
  let alive = true;

  const load = async (): Promise<void> => {
    replace(listError);
    let sources: Source[];
    try {
      sources = await allSources();
    } catch (e) {
      replace(list);
      replace(listError, errorBox(e));
      return;
    }
    if (!alive) return;
    replace(list, sourcesTable(sources, load));
    fillTargets(sources);
  };

  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Sources"), h("button", { type: "button", class: "secondary", onclick: () => void load() }, "Reload list")),
    listError,
    list,
    h("div", { class: "forms" }, uploadSection, webSourceForm()),
  );
  void load();
  return () => {
    alive = false;
  };
}

function sourcesTable(sources: Source[], reload: () => Promise<void>): HTMLElement {
  if (sources.length === 0) return h("p", { class: "muted", id: "no-sources" }, "No sources yet: add a web source or upload files below.");
  const body = h("tbody");
  for (const s of sources) {
    const rowError = h("div");
    const actions = h(
      "td",
      { class: "actions-cell" },
      h("a", { href: `#/jobs?source_id=${encodeURIComponent(s.sourceId)}`, class: "button secondary" }, "Jobs"),
      s.url &&
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: async () => {
              try {
                const r = await api.refreshSource(s.sourceId);
                if (r.job) navigate(`#/jobs/${r.job.jobId}`);
              } catch (e) {
                replace(rowError, errorBox(e));
              }
            },
          },
          "Refresh",
        ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          "aria-label": `Delete ${s.name || s.url}`,
          onclick: async () => {
            const ok = await confirmDialog(
              "Delete source?",
              `“${s.name || s.url}” and its ${num(s.documentCount)} documents, jobs and vectors will be deleted. Running jobs are cancelled first. This cannot be undone.`,
              "Delete",
            );
            if (!ok) return;
            try {
              await api.deleteSource(s.sourceId);
              await reload();
            } catch (e) {
              replace(rowError, errorBox(e));
            }
          },
        },
        "Delete",
      ),
      rowError,
    );
    body.append(
      h(
        "tr",
        { "data-source-id": s.sourceId },
        h(
          "td",
          { "data-label": "Source" },
          h("div", { class: "source-name" }, s.name || s.url),
          s.url ? h("div", { class: "muted small" }, s.url) : h("div", { class: "muted small" }, "upload"),
          s.error && h("div", { class: "error small" }, s.error),
        ),
        h("td", { "data-label": "Status" }, badge(SourceStatus, s.status)),
        h("td", { "data-label": "Documents", class: "num" }, num(s.documentCount)),
        h("td", { "data-label": "Chunks", class: "num" }, num(s.chunkCount)),
        h("td", { "data-label": "Last crawl" }, lastCrawl(s)),
        h("td", { "data-label": "Updated" }, date(s.updateTime)),
        actions,
      ),
    );
  }
  return h(
    "table",
    { id: "sources" },
    h("caption", { class: "visually-hidden" }, "Sources"),
    h(
      "thead",
      {},
      h("tr", {}, ...["Source", "Status", "Documents", "Chunks", "Last crawl", "Updated", "Actions"].map((c) => h("th", { scope: "col" }, c))),
    ),
    body,
  );
}

/**
 * lastCrawl is when the source's newest finished crawl ended, linking to that crawl job; "never"
 * for a web source none of whose crawls has finished, "—" for an upload source.
 */
function lastCrawl(s: Source): HTMLElement | string {
  if (s.lastCrawlJobId) return h("a", { href: `#/jobs/${s.lastCrawlJobId}` }, date(s.lastCrawlTime));
  return s.url ? "never" : "—";
}

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint && h("div", { class: "muted small" }, hint));
}

function webSourceForm(): HTMLElement {
  const url = h("input", { id: "web-url", type: "url", required: true, placeholder: "https://docs.example.com/" });
  const name = h("input", { id: "web-name", type: "text", maxlength: 200, placeholder: "defaults to the host" });
  const crawler = h(
    "select",
    { id: "web-crawler" },
    h("option", { value: String(Crawler.BUILTIN) }, "built-in"),
    h("option", { value: String(Crawler.FIRECRAWL) }, "Firecrawl (when configured)"),
  );
  const limit = h("input", { id: "web-limit", type: "number", min: 1, placeholder: "server default" });
  const depth = h("input", { id: "web-depth", type: "number", min: 0, placeholder: "server default" });
  const include = h("textarea", { id: "web-include", rows: 2, placeholder: "^/docs/" });
  const exclude = h("textarea", { id: "web-exclude", rows: 2, placeholder: "^/blog/" });
  const subdomains = h("input", { id: "web-subdomains", type: "checkbox" });
  const ignoreQuery = h("input", { id: "web-ignore-query", type: "checkbox" });
  const status = h("div", { "aria-live": "polite" });
  const lines = (t: HTMLTextAreaElement) =>
    t.value
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  const form = h(
    "form",
    {
      id: "web-source-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        replace(status, "Creating…");
        try {
          const r = await api.createSource(
            create(CreateSourceRequestSchema, {
              url: url.value.trim(),
              name: name.value.trim(),
              crawler: Number(crawler.value),
              crawlOptions: create(CrawlOptionsSchema, {
                limit: Number(limit.value) || 0,
                maxDepth: Number(depth.value) || 0,
                includePaths: lines(include),
                excludePaths: lines(exclude),
                allowSubdomains: subdomains.checked,
                ignoreQueryParameters: ignoreQuery.checked,
              }),
            }),
          );
          navigate(r.job ? `#/jobs/${r.job.jobId}` : "#/sources");
        } catch (err) {
          replace(status, errorBox(err));
        }
      },
    },
    field("URL", url),
    field("Name", name),
    field("Crawler", crawler),
    h("div", { class: "row" }, field("Page limit", limit), field("Max depth", depth)),
    field("Include paths", include, "Regular expressions on the URL path, one a line."),
    field("Exclude paths", exclude),
    h("div", { class: "check" }, subdomains, h("label", { for: subdomains.id }, "Follow subdomains")),
    h("div", { class: "check" }, ignoreQuery, h("label", { for: ignoreQuery.id }, "Ignore query parameters")),
    h("button", { type: "submit" }, "Add and crawl"),
    status,
  );
  return h("section", { class: "card", "aria-labelledby": "web-title" }, h("h2", { id: "web-title" }, "Add a web source"), form);
}

type Picked = { rel: string; file: File };

function uploadForm(): { section: HTMLElement; fillTargets: (sources: Source[]) => void } {
  const target = h("select", { id: "upload-target" });
  const name = h("input", { id: "upload-name", type: "text", maxlength: 200, placeholder: "defaults to the folder's name" });
  const files = h("input", { id: "upload-files", type: "file", multiple: true, accept: Object.keys(contentTypes).join(",") });
  const folder = h("input", { id: "upload-folder", type: "file", webkitdirectory: true, multiple: true });
  const status = h("div", { id: "upload-status", "aria-live": "polite" });
  const nameField = field("New source's name", name);
  target.addEventListener("change", () => {
    nameField.hidden = target.value !== "";
  });

  const fillTargets = (sources: Source[]) => {
    const keep = target.value;
    replace(
      target,
      h("option", { value: "" }, "A new upload source"),
      ...sources.filter((s) => !s.url).map((s) => h("option", { value: s.sourceId }, s.name || s.sourceId)),
    );
    target.value = [...target.options].some((o) => o.value === keep) ? keep : "";
    nameField.hidden = target.value !== "";
  };

  const form = h(
    "form",
    {
      id: "upload-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const picked: Picked[] = [];
        for (const f of files.files ?? []) picked.push({ rel: f.name, file: f });
        // A folder's files carry their path from the chosen folder down: the folder's own name
        // is left out, as `pipeline ingest DIR` keys documents by their path under DIR.
        let folderName = "";
        for (const f of folder.files ?? []) {
          const parts = f.webkitRelativePath.split("/");
          folderName ||= parts.length > 1 ? parts[0] : "";
          picked.push({ rel: parts.length > 1 ? parts.slice(1).join("/") : f.name, file: f });
        }
        if (picked.length === 0) {
          replace(status, errorBox("Choose files or a folder first."));
          return;
        }
        try {
          await upload(picked, target.value, name.value.trim() || folderName || "upload", status);
        } catch (err) {
          status.append(errorBox(err));
        }
      },
    },
    field("Into", target),
    nameField,
    field("Files", files, "Markdown, text and HTML (.md, .markdown, .txt, .html, .htm)."),
    field("Or a folder", folder, "Every such file under it; hidden files are left out."),
    h("button", { type: "submit" }, "Upload"),
    status,
  );
  return { section: h("section", { class: "card", "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title" }, "Upload files"), form), fillTargets };
}

async function upload(picked: Picked[], sourceId: string, newName: string, status: HTMLElement): Promise<void> {
  const skipped: string[] = [];
  const docs: DocumentInput[] = [];
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  replace(status, `Reading ${picked.length} files…`);
  for (const { rel, file } of picked) {
    const ext = rel.slice(rel.lastIndexOf(".")).toLowerCase();
    if (rel.split("/").some((p) => p.startsWith("."))) continue;
    if (!contentTypes[ext]) {
      skipped.push(`${rel} (not .md, .txt or .html)`);
      continue;
    }
    if (file.size > maxDocBytes) {
      skipped.push(`${rel} (over 10 MiB)`);
      continue;
    }
    let text: string;
    try {
      text = utf8.decode(await file.arrayBuffer());
    } catch {
      skipped.push(`${rel} (not UTF-8 text)`);
      continue;
    }
    if (text.includes("\u0000")) {
      skipped.push(`${rel} (not text)`);
      continue;
    }
    docs.push(create(DocumentInputSchema, { uri: rel, content: text, contentType: contentTypes[ext] }));
  }
  if (docs.length === 0) {
    replace(status, errorBox(`No files to upload${skipped.length ? `: skipped ${skipped.join(", ")}` : ""}.`));
    return;
  }
  if (!sourceId) {
    replace(status, "Creating the source…");
    const r = await api.createSource(create(CreateSourceRequestSchema, { name: newName }));
    sourceId = r.source?.sourceId ?? "";
  }
  const jobIds: string[] = [];
  let changed = 0;
  for (let i = 0; i < docs.length; ) {
    const batch: DocumentInput[] = [];
    let bytes = 0;
    while (i < docs.length && batch.length < batchDocs && (batch.length === 0 || bytes + docs[i].content.length <= batchBytes)) {
      bytes += docs[i].content.length;
      batch.push(docs[i++]);
    }
    replace(status, `Uploading ${i} of ${docs.length} documents…`);
    const r = await api.ingest(sourceId, batch);
    changed += r.changedCount;
    if (r.job) jobIds.push(r.job.jobId);
  }
  replace(
    status,
    `Uploaded ${docs.length} documents (${changed} new or changed).`,
    skipped.length > 0 && h("div", { class: "muted small" }, `Skipped: ${skipped.join(", ")}`),
  );
  navigate(jobIds.length === 1 ? `#/jobs/${jobIds[0]}` : `#/jobs?source_id=${encodeURIComponent(sourceId)}`);
}
