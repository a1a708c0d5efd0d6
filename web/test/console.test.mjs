// The console's browser test: headless Chromium (Debian's, driven by playwright-core) against a
// live server, run by e2e/console_test.go, which starts the server, writes the folder to upload
// and passes these settings:
//
//   CONSOLE_URL          the server's HTTP address, http://host:port
//   CONSOLE_MODE         "flow" (upload, progress, failure, retry, search, cancel, crawl, delete)
//                        or "outage" (a server with API keys and no workers: unauthorized,
//                        permission denied, the server stopped and started again)
//                        or "dev" (against a real `pipeline dev`: the page loads, a folder is
//                        uploaded and processed to 100% live, a search finds it)
//   CONSOLE_FOLDER       the folder to upload (flow, dev)
//   CONSOLE_SOURCE_NAME  the upload source's name (flow, dev)
//   CONSOLE_FAILED_URI   the document whose first job fails (flow)
//   CONSOLE_QUERY, CONSOLE_QUERY_URI  a search and the uri its first result must have (flow, dev)
//   CONSOLE_SITE_URL     a small web site to add as a source and crawl (flow)
//   CONSOLE_READ_KEY, CONSOLE_WRITE_KEY  a read-only and a read-write key (outage)
//   CONSOLE_SCREENSHOTS  the folder for a screenshot of each page
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// In flow mode one document waits in the server until the script prints the line UNBLOCK
// (after it saw the job part done), so the bar is seen moving live. In outage mode the script
// asks the Go test to STOP and START the server and to CANCEL a job, and waits for its answer.
//
// It prints each step and exits non-zero on the first failure, with a screenshot of the page
// as it was.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const base = env("CONSOLE_URL");
const mode = env("CONSOLE_MODE", "flow");
const shots = env("CONSOLE_SCREENSHOTS");
mkdirSync(shots, { recursive: true });
const timeout = 60_000;

// Without the networking flags Chromium reaches out to Google's services, which a closed
// network refuses; the rest keep a CI run quiet and reproducible.
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const profile = mkdtempSync(join(tmpdir(), "console-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: flags,
  viewport: { width: 1280, height: 860 },
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(timeout);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
// The console loads nothing from elsewhere: no fonts, no CDN.
const foreign = [];
page.on("request", (r) => {
  if (!r.url().startsWith(`${base}/`) && !r.url().startsWith("data:")) foreign.push(r.url());
});

// The Go test answers some lines on stdin (see e2e/console_test.go): ask prints a request and
// waits for the reply line.
const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const ask = async (line) => {
  console.log(line);
  const r = await replies.next();
  return r.done ? "" : r.value;
};

let n = 0;
const shot = async (name) => {
  n++;
  await page.screenshot({ path: join(shots, `${String(n).padStart(2, "0")}-${name}.png`), fullPage: true, animations: "disabled" });
};
const step = async (name, fn) => {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    await page.screenshot({ path: join(shots, `failed-${name.replaceAll(/[^a-z0-9]+/gi, "-")}.png`), fullPage: true }).catch(() => undefined);
    throw e;
  }
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
};

/** navTo follows a link of the header's navigation. */
const navTo = (name) => page.locator("nav").getByRole("link", { name, exact: true }).click();

/**
 * reloadUntil clicks the sources page's "Reload list" until ok() holds (a fact that follows a job's
 * end by a moment, such as a source's last crawl), and fails after 200 reads.
 */
async function reloadUntil(what, ok) {
  for (let i = 0; i < 200; i++) {
    await page.locator("#sources tr[data-source-id]").first().waitFor();
    if (await ok()) return;
    // Mark the table, so the next read waits for the list drawn again.
    await page.evaluate(() => (document.querySelector("#sources").__stale = true));
    await page.getByRole("button", { name: "Reload list" }).click();
    await page.waitForFunction(() => !document.querySelector("#sources")?.__stale, null, { timeout });
  }
  assert.fail(`the sources page never showed ${what}`);
}

/** waitFull waits for the job page's bar to reach 100 and records every value it showed. */
async function waitFull() {
  const seen = await page.evaluate(async (ms) => {
    const bar = () => document.querySelector("#job-progress [role=progressbar]");
    const values = [];
    const deadline = Date.now() + ms;
    return await new Promise((resolve, reject) => {
      const look = () => {
        const b = bar();
        const v = b?.getAttribute("aria-valuenow");
        if (v !== undefined && v !== null && values.at(-1) !== v) values.push(v);
        if (v === "100" && b?.dataset.status === "COMPLETED") return resolve(values);
        if (Date.now() > deadline) return reject(new Error(`progress stuck at ${v}; seen ${values}`));
        requestAnimationFrame(look);
      };
      look();
    });
  }, timeout);
  return seen.map(Number);
}

/** searchFinds searches CONSOLE_QUERY in the source and checks the first result's uri and score. */
async function searchFinds(sourceName) {
  await navTo("Search");
  await page.locator("#search-query").fill(env("CONSOLE_QUERY"));
  await page.locator("#search-source").selectOption({ label: sourceName });
  await page.locator("#search-query").press("Enter");
  const first = page.locator("#search-results .result").first();
  await first.waitFor();
  assert.equal(await first.getAttribute("data-uri"), env("CONSOLE_QUERY_URI"));
  assert.match(await first.innerText(), /\d\.\d{3}/, "score shown");
  await shot("search");
}

async function flow() {
  const folder = env("CONSOLE_FOLDER");
  const sourceName = env("CONSOLE_SOURCE_NAME");
  const failedUri = env("CONSOLE_FAILED_URI");
  let firstJob = "";

  await step("sources page loads", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("heading", { name: "Sources" }).waitFor();
    await page.locator("#no-sources, #sources").first().waitFor();
    // Set on the page: if anything reloads it, the mark is gone.
    await page.evaluate(() => (window.__sameLoad = true));
    await shot("sources");
  });

  await step("upload a folder", async () => {
    await page.locator("#upload-name").fill(sourceName);
    await page.locator("#upload-folder").setInputFiles(folder);
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    firstJob = page.url().split("/").at(-1);
    await page.locator("#job-progress [role=progressbar]").waitFor();
    await shot("job-progress");
  });

  await step("the progress bar moves while the job runs", async () => {
    // One document waits in the server's embedder until this line is printed.
    const partial = await page.waitForFunction(() => {
      const v = Number(document.querySelector("#job-progress [role=progressbar]")?.getAttribute("aria-valuenow"));
      return v > 0 && v < 100 ? v : 0;
    }, null, { timeout });
    console.log(`     part done: ${await partial.jsonValue()}%`);
    await page.getByText(/documents\/s/).waitFor();
    await shot("job-progress-partial");
    console.log("UNBLOCK");
  });

  await step("the progress bar reaches 100% without a reload", async () => {
    const seen = await waitFull();
    console.log(`     progress values shown: ${seen.join(", ")}`);
    assert.equal(seen.at(-1), 100);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `progress went back: ${seen}`);
    assert.equal(await page.evaluate(() => window.__sameLoad), true, "the page was reloaded");
  });

  await step("the job's failed document shows its error", async () => {
    const row = page.locator("#results tr[data-status=FAILED]", { hasText: failedUri });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /transient/i, "error kind");
    assert.match(text, /503 service unavailable/, "error message");
    const attempts = Number(await row.locator("td[data-label=Attempts]").innerText());
    assert.ok(attempts > 1, `attempts ${attempts}`);
    await page.locator("#results tr[data-status=SUCCEEDED]").first().waitFor();
    await shot("job-detail-failed-document");
  });

  await step("retry the failed document", async () => {
    await page.locator("#retry-job").click();
    await page.waitForURL((u) => /#\/jobs\/[0-9a-f-]{36}$/.test(u.hash) && !u.hash.endsWith(firstJob));
    const seen = await waitFull();
    assert.equal(seen.at(-1), 100);
    const row = page.locator("#results tr", { hasText: failedUri });
    await row.and(page.locator("[data-status=SUCCEEDED]")).waitFor();
    assert.equal(await page.locator("#results tr[data-status=FAILED]").count(), 0);
    await page.getByText("Retry of").waitFor();
    await shot("job-detail-retried");
  });

  await step("the source's note of failed documents is gone after the retry; its counts are the API's", async () => {
    await navTo("Sources");
    const row = page.locator("#sources tr[data-source-id]", { hasText: sourceName });
    await row.waitFor();
    // The source settles before the job's last event goes out, so the first read should already
    // be clean.
    await reloadUntil("the source without its note", async () => (await row.locator(".error").count()) === 0);
    const id = await row.getAttribute("data-source-id");
    const src = await page.evaluate(async (id) => (await (await fetch(`/v1/sources/${id}`)).json()).source, id);
    const chunks = Number(src.chunk_count ?? src.chunkCount ?? 0);
    assert.ok(chunks > 0, `chunk count ${chunks}`);
    assert.equal((await row.locator("td[data-label=Chunks]").innerText()).trim(), chunks.toLocaleString("en-US"));
    assert.equal((await row.locator("td[data-label='Last crawl']").innerText()).trim(), "—", "an upload source is never crawled");
    await shot("sources-after-retry");
  });

  await step("jobs page lists both jobs", async () => {
    await navTo("Jobs");
    await page.locator("#jobs tbody tr[data-job-id]").nth(1).waitFor();
    assert.equal(await page.locator(`#jobs tr[data-job-id="${firstJob}"] [role=progressbar]`).getAttribute("aria-valuenow"), "100");
    await page.locator("#filter-status").selectOption("JOB_STATUS_COMPLETED");
    await page.waitForURL(/status=JOB_STATUS_COMPLETED/);
    await page.locator("#jobs tbody tr[data-job-id]").first().waitFor();
    await shot("jobs");
  });

  await step("search finds the right document", () => searchFinds(sourceName));

  await step("workers and stats", async () => {
    await navTo("Workers & stats");
    await page.locator("#workers tr[data-worker-id]").first().waitFor();
    await page.getByText("documents / s").waitFor();
    await shot("workers");
  });

  await step("cancel a running job", async () => {
    // The server holds this document until the test ends: its job runs until cancelled.
    await navTo("Sources");
    await page.locator("#upload-name").fill("stuck");
    await page.locator("#upload-files").setInputFiles({ name: "stuck.md", mimeType: "text/markdown", buffer: Buffer.from("# Stuck\n\nHOLD-FOR-CANCEL\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    await page.locator("#job-facts .badge.status-in-progress").waitFor();
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.locator("#job-facts .badge.status-cancelled").waitFor();
    await page.getByRole("button", { name: "Retry failed documents" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Cancel job" }).count(), 0);
    await shot("job-cancelled");
  });

  await step("add a web source: its crawl job runs to the end", async () => {
    await navTo("Sources");
    await page.locator("#web-url").fill(env("CONSOLE_SITE_URL"));
    await page.locator("#web-name").fill("site");
    await page.locator("#web-limit").fill("10");
    await page.locator("#web-depth").fill("2");
    await page.locator("#web-ignore-query").check();
    await page.getByRole("button", { name: "Add and crawl" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    await waitFull();
    assert.match(await page.locator("#job-facts").innerText(), /crawl[\s\S]*Pages fetched\s*2/);
    await shot("crawl-job");
  });

  await step("the web source is listed with its last crawl, and refreshes", async () => {
    await navTo("Sources");
    const row = page.locator("#sources tr[data-source-id]", { hasText: "site" });
    await reloadUntil("the last crawl", async () => (await row.locator("td[data-label='Last crawl'] a").count()) > 0);
    await row.getByRole("button", { name: "Refresh" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const recrawl = page.url().split("/").at(-1);
    await waitFull();
    await navTo("Sources");
    // The last crawl now names the refresh's crawl job.
    const link = page.locator(`#sources tr[data-source-id] td[data-label='Last crawl'] a[href$="${recrawl}"]`);
    await reloadUntil("the refresh's crawl as the last crawl", async () => (await link.count()) > 0);
    await shot("sources-with-web-source");
  });

  await step("keyboard: Tab to a section, Enter, type a search, Enter", async () => {
    await page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.getAttribute("data-route") === "search");
    }
    assert.ok(reached, "Tab did not reach the Search link");
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/search$/);
    // The query box takes the focus when the page opens (once it is drawn: typing before that
    // would go to the link, as a slow machine showed).
    await page.waitForFunction(() => document.activeElement?.id === "search-query", null, { timeout });
    await page.keyboard.type(env("CONSOLE_QUERY"));
    await page.keyboard.press("Enter");
    await page.locator("#search-results .result").first().waitFor();
    await navTo("Sources");
  });

  await step("phone layout: no page is wider than a phone", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // fits waits for a page's content, then checks nothing sticks out sideways.
    const fits = async (name, ready) => {
      await page.locator(ready).first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${name} is ${overflow}px wider than a phone`);
    };
    await fits("sources", "#sources tr[data-source-id]");
    await shot("sources-phone");
    await navTo("Jobs");
    await fits("jobs", "#jobs tbody tr[data-job-id]");
    await page.locator("#jobs tbody tr[data-job-id]", { hasText: "process" }).first().locator("a").click();
    await fits("a job", "#results tr");
    await shot("job-phone");
    await navTo("Workers & stats");
    await fits("workers", "#workers tr[data-worker-id]");
    await navTo("Sources");
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await step("delete the source after confirming", async () => {
    const row = page.locator("#sources tr[data-source-id]", { hasText: sourceName });
    await row.waitFor();
    assert.notEqual((await row.locator("td[data-label=Chunks]").innerText()).trim(), "0");
    await row.getByRole("button", { name: /^Delete/ }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await shot("delete-confirm");
    await dialog.getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    await page.locator("#sources tr[data-source-id]", { hasText: "site" }).waitFor();
    assert.equal(await page.evaluate(() => window.__sameLoad), true, "the page was reloaded");
    await shot("sources-after-delete");
  });
}

async function outage() {
  await step("a server with keys: the console says unauthorized", async () => {
    await page.goto(`${base}/#/sources`);
    await page.getByRole("alert").filter({ hasText: "Unauthorized" }).waitFor();
    await shot("unauthorized");
  });

  const enterKey = async (key) => {
    await page.getByRole("button", { name: /API key/ }).first().click();
    await page.getByLabel("Key", { exact: true }).fill(key);
    await page.getByRole("button", { name: "Save" }).click();
  };

  await step("a read-only key reads, and its write is refused as permission denied", async () => {
    await enterKey(env("CONSOLE_READ_KEY"));
    await page.locator("#no-sources").waitFor();
    assert.equal(await page.locator(".banner").isHidden(), true);
    await page.locator("#upload-files").setInputFiles({ name: "a.md", mimeType: "text/markdown", buffer: Buffer.from("# A\n\nText.\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("alert").filter({ hasText: "Permission denied" }).waitFor();
    await shot("permission-denied");
  });

  let jobId = "";
  await step("a read-write key uploads; the job page follows the pending job", async () => {
    await enterKey(env("CONSOLE_WRITE_KEY"));
    await page.locator("#upload-files").setInputFiles({ name: "a.md", mimeType: "text/markdown", buffer: Buffer.from("# A\n\nText.\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    jobId = page.url().split("/").at(-1);
    await page.getByText("Live: following the job's progress stream.").waitFor();
    await page.evaluate(() => (window.__sameLoad = true));
  });

  await step("the server stops: the console says it is unreachable", async () => {
    assert.equal(await ask("STOP"), "STOPPED");
    await page.getByRole("alert").filter({ hasText: "Server unreachable" }).waitFor();
    await page.getByText(/Progress stream interrupted/).waitFor();
    await shot("server-unreachable");
  });

  await step("the server is back: the page follows the job again by itself", async () => {
    assert.equal(await ask("START"), "STARTED");
    await page.getByText("Live: following the job's progress stream.").waitFor();
    await page.locator(".banner").waitFor({ state: "hidden" });
    await page.locator("#results tr[data-status=PENDING]").waitFor();
  });

  await step("a cancel made elsewhere reaches the page on the reopened stream", async () => {
    assert.equal(await ask(`CANCEL ${jobId}`), "CANCELLED");
    await page.locator("#job-progress [role=progressbar][data-status=CANCELLED]").waitFor();
    await page.locator("#job-facts .badge.status-cancelled").waitFor();
    assert.equal(await page.evaluate(() => window.__sameLoad), true, "the page was reloaded");
    await shot("cancelled-after-outage");
  });
}

/** dev is the short path against a real `pipeline dev`, whose embedder has no faults to inject. */
async function dev() {
  const sourceName = env("CONSOLE_SOURCE_NAME");
  await step("the console loads from the binary", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("heading", { name: "Sources" }).waitFor();
    await page.locator("#no-sources, #sources").first().waitFor();
    await page.evaluate(() => (window.__sameLoad = true));
    await shot("sources");
  });
  await step("upload a folder; the bar reaches 100% without a reload", async () => {
    await page.locator("#upload-name").fill(sourceName);
    await page.locator("#upload-folder").setInputFiles(env("CONSOLE_FOLDER"));
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const seen = await waitFull();
    assert.equal(seen.at(-1), 100);
    assert.equal(await page.evaluate(() => window.__sameLoad), true, "the page was reloaded");
    await page.locator("#results tr[data-status=SUCCEEDED]").first().waitFor();
    assert.equal(await page.locator("#results tr[data-status=FAILED]").count(), 0);
    await shot("job-done");
  });
  await step("search finds the uploaded document", () => searchFinds(sourceName));
}

let failed = false;
try {
  if (mode === "outage") await outage();
  else if (mode === "dev") await dev();
  else await flow();
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  assert.deepEqual(foreign, [], "requests to other origins");
} catch (e) {
  failed = true;
  if (pageErrors.length) console.log(`page errors:\n${pageErrors.join("\n")}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
