// The console's shell: navigation, the hash router (#/sources, #/jobs, #/jobs/<id>, #/search,
// #/workers), the banner for a server that is down or wants a key, and the API key dialog.
import { ApiError, apiKey, onCallOutcome, setApiKey } from "./api.js";
import { append, h, replace } from "./dom.js";
import { jobDetailPage, jobsPage } from "./jobs.js";
import { searchPage } from "./search.js";
import { sourcesPage } from "./sources.js";
import { workersPage } from "./workers.js";

/** A page renders into main and returns what stops its streams and timers when it is left. */
export type Page = (main: HTMLElement, params: URLSearchParams, arg: string) => (() => void) | void;

const routes: { name: string; label: string; page: Page }[] = [
  { name: "sources", label: "Sources", page: sourcesPage },
  { name: "jobs", label: "Jobs", page: jobsPage },
  { name: "search", label: "Search", page: searchPage },
  { name: "workers", label: "Workers & stats", page: workersPage },
];

const main = h("main", { id: "main", tabindex: -1 });
const banner = h("div", { class: "banner", role: "alert", hidden: true });
const keyButton = h("button", { type: "button", class: "secondary key-button", onclick: () => openKeyDialog() });
const nav = h("nav", { "aria-label": "Sections" });

function keyLabel(): void {
  replace(keyButton, apiKey() ? "API key ✓" : "API key");
}

let leave: (() => void) | void;

function render(): void {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, qs = ""] = hash.split("?", 2);
  const [name, arg = ""] = path.split("/", 2);
  const route = routes.find((r) => r.name === name);
  if (!route) {
    location.replace("#/sources");
    return;
  }
  if (leave) leave();
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.route === route.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = arg && route.name === "jobs" ? jobDetailPage : route.page;
  main.replaceChildren();
  document.title = `${route.label} · pipeline console`;
  leave = page(main, new URLSearchParams(qs), decodeURIComponent(arg));
}

function showBanner(err: ApiError | null): void {
  if (!err || err.failure === "other") {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.dataset.kind = err.failure;
  if (err.failure === "unreachable") {
    replace(banner, h("strong", {}, "Server unreachable. "), "The console cannot reach the API; it retries when you act or reload. ", h("button", { type: "button", class: "secondary", onclick: render }, "Try again"));
  } else if (err.failure === "unauthorized") {
    replace(banner, h("strong", {}, "Unauthorized. "), `The server wants an API key (${err.message}). `, h("button", { type: "button", onclick: () => openKeyDialog() }, "Enter API key"));
  } else {
    replace(banner, h("strong", {}, "Permission denied. "), `This API key lacks a scope this page needs: ${err.message}`);
  }
}

function openKeyDialog(): void {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", value: apiKey(), spellcheck: false });
  const dlg = h("dialog", { class: "key-dialog", "aria-labelledby": "key-title" });
  const close = () => {
    dlg.close();
    dlg.remove();
  };
  const form = h(
    "form",
    {
      method: "dialog",
      onsubmit: (e: Event) => {
        e.preventDefault();
        setApiKey(input.value.trim());
        keyLabel();
        close();
        render();
      },
    },
    h("h2", { id: "key-title" }, "API key"),
    h("p", {}, "Sent as Authorization: Bearer on every call; kept in this browser only. Leave empty when the server has no keys."),
    h("label", { for: "api-key" }, "Key"),
    input,
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"), h("button", { type: "submit" }, "Save")),
  );
  append(dlg, form);
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  input.focus();
}

function start(): void {
  for (const r of routes) append(nav, h("a", { href: `#/${r.name}`, "data-route": r.name }, r.label));
  keyLabel();
  const header = h(
    "header",
    {},
    h("a", { class: "skip", href: "#main", onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
    h("span", { class: "brand" }, "pipeline"),
    nav,
    keyButton,
  );
  document.body.replaceChildren(header, banner, main);
  onCallOutcome(showBanner);
  window.addEventListener("hashchange", render);
  render();
}

start();
