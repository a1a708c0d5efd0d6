// The search page: a query box, a source filter and the results with score, title, url, heading
// path and text.
import { create } from "@bufbuild/protobuf";
import { SearchRequestSchema, type SearchResult } from "../../gen/ts/src/gen/pipeline/v1/search_pb.js";
import { allSources, api } from "./api.js";
import { errorBox, h, replace } from "./dom.js";

export function searchPage(main: HTMLElement, params: URLSearchParams): void {
  const q = h("input", { id: "search-query", type: "search", required: true, maxlength: 2000, placeholder: "how do I install it?", value: params.get("q") ?? "" });
  const source = h("select", { id: "search-source" }, h("option", { value: "" }, "All sources"));
  const topK = h("input", { id: "search-top-k", type: "number", min: 1, max: 100, value: 10 });
  const out = h("div", { id: "search-results", "aria-live": "polite" });
  const run = async () => {
    if (!q.value.trim()) return;
    replace(out, h("p", { class: "muted" }, "Searching…"));
    try {
      const r = await api.search(
        create(SearchRequestSchema, { query: q.value.trim(), sourceIds: source.value ? [source.value] : [], topK: Number(topK.value) || 10 }),
      );
      replace(out, r.results.length ? h("ol", { class: "results" }, ...r.results.map(resultItem)) : h("p", { class: "muted" }, "Nothing found."));
    } catch (e) {
      replace(out, errorBox(e));
    }
  };
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Search")),
    h(
      "form",
      {
        class: "search-form",
        role: "search",
        onsubmit: (e: Event) => {
          e.preventDefault();
          void run();
        },
      },
      h("label", { for: q.id, class: "visually-hidden" }, "Query"),
      q,
      h("label", { for: source.id }, "Source"),
      source,
      h("label", { for: topK.id }, "Results"),
      topK,
      h("button", { type: "submit" }, "Search"),
    ),
    out,
  );
  q.focus();
  void allSources()
    .then((sources) => {
      for (const s of sources) source.append(h("option", { value: s.sourceId }, s.name || s.url));
      source.value = params.get("source_id") ?? "";
    })
    .catch(() => undefined);
}

function resultItem(r: SearchResult): HTMLElement {
  const web = /^https?:\/\//.test(r.uri);
  return h(
    "li",
    { class: "result", "data-uri": r.uri },
    h(
      "div",
      { class: "result-head" },
      h("span", { class: "score", title: "similarity score" }, r.score.toFixed(3)),
      h("span", { class: "result-title" }, r.title || r.uri),
    ),
    (web || (r.title && r.title !== r.uri)) && h("div", { class: "muted small" }, web ? h("a", { href: r.uri, rel: "noopener noreferrer", target: "_blank" }, r.uri) : r.uri),
    r.headingPath && h("div", { class: "heading-path small" }, r.headingPath),
    h("p", { class: "result-text" }, r.text),
  );
}
