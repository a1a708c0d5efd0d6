// Small DOM helpers: element building without innerHTML (text from the server is never parsed as
// markup), formatting of the API's numbers and times, and the confirmation dialog.
import { timestampDate, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** h builds an element: attributes (on* keys become listeners; false/null/undefined are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

/** replace swaps an element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

export function num(v: bigint | number): string {
  return Number(v).toLocaleString("en-US");
}

export function date(ts: Timestamp | undefined): string {
  if (!ts) return "—";
  return timestampDate(ts).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

/** ago is "12 s ago" style age of a timestamp. */
export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  if (!ts) return "—";
  return `${duration((now - timestampDate(ts).getTime()) / 1000)} ago`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function protoDuration(d: Duration | undefined): string {
  if (!d) return "—";
  return duration(Number(d.seconds) + d.nanos / 1e9);
}

/** enumName turns a generated enum's value into its readable name ("IN_PROGRESS" → "in progress"). */
export function enumName(e: Record<number, string>, v: number): string {
  return (e[v] ?? String(v)).toLowerCase().replaceAll("_", " ");
}

/** badge is a status label whose class (status-completed, status-failed, ...) colours it. */
export function badge(e: Record<number, string>, v: number): HTMLElement {
  const name = e[v] ?? "UNSPECIFIED";
  return h("span", { class: `badge status-${name.toLowerCase().replaceAll("_", "-")}` }, enumName(e, v));
}

/** confirmDialog asks in a modal dialog (Escape and Cancel say no); resolves true on the confirm button. */
export function confirmDialog(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
    const done = (yes: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(yes);
    };
    append(
      dlg,
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => done(false) }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => done(true) }, confirmLabel),
      ),
    );
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** errorBox is the inline message of a failed action on a page. */
export function errorBox(err: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err));
}

/** navigate moves to a hash route; the route it is on already is rendered anew. */
export function navigate(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
