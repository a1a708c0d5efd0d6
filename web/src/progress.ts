// A job's progress bar with its rate and ETA, fed by WatchJob updates (never by polling).
import { JobStatus, JobType, type Job } from "../../gen/ts/src/gen/pipeline/v1/jobs_pb.js";
import { duration, h, num, replace } from "./dom.js";

/** done and total of a job: documents for a processing job, pages for a crawl. */
export function counts(job: Job): { done: number; total: number; unit: string } {
  if (job.type === JobType.CRAWL) {
    const c = job.crawl;
    return { done: Number((c?.pagesFetched ?? 0n) + (c?.pagesFailed ?? 0n)), total: Number(c?.pagesDiscovered ?? 0n), unit: "pages" };
  }
  const p = job.processing;
  return { done: Number((p?.processedCount ?? 0n) + (p?.errorCount ?? 0n)), total: Number(p?.documentCount ?? 0n), unit: "documents" };
}

export function percent(job: Job): number {
  const { done, total } = counts(job);
  if (job.status === JobStatus.COMPLETED) return 100;
  if (total === 0) return 0;
  return Math.min(100, Math.floor((done * 100) / total));
}

/** The rate is measured over the updates of the last window. */
const windowMs = 30_000;

/** ProgressView is one job's bar; update it with each job the watch delivers. */
export class ProgressView {
  readonly el: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly fill: HTMLElement;
  private readonly label: HTMLElement;
  private readonly samples: { t: number; done: number }[] = [];

  constructor(
    job: Job,
    private readonly detailed: boolean,
  ) {
    this.fill = h("div", { class: "fill" });
    this.bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": "progress" }, this.fill);
    this.label = h("div", { class: "progress-label" });
    this.el = h("div", { class: "progress" }, this.bar, this.label);
    this.update(job);
  }

  update(job: Job): void {
    const pct = percent(job);
    const { done, total, unit } = counts(job);
    const now = performance.now();
    this.samples.push({ t: now, done });
    while (this.samples.length > 2 && now - this.samples[0].t > windowMs) this.samples.shift();

    this.bar.setAttribute("aria-valuenow", String(pct));
    this.bar.setAttribute("aria-valuetext", `${pct}%: ${done} of ${total} ${unit}`);
    this.bar.dataset.status = JobStatus[job.status] ?? "";
    this.fill.style.width = `${pct}%`;
    const parts = [`${pct}%`, `${num(done)} / ${num(total)} ${unit}`];
    const errors = Number(job.processing?.errorCount ?? job.crawl?.pagesFailed ?? 0n);
    if (errors > 0) parts.push(`${num(errors)} failed`);
    const active = job.status === JobStatus.IN_PROGRESS || job.status === JobStatus.PENDING;
    if (active && this.detailed) {
      const first = this.samples[0];
      const secs = (now - first.t) / 1000;
      const rate = secs > 0 ? (done - first.done) / secs : 0;
      if (rate > 0) {
        parts.push(`${rate.toFixed(rate < 10 ? 1 : 0)} ${unit}/s`);
        if (total > done) parts.push(`ETA ${duration((total - done) / rate)}`);
      } else if (secs > 0) {
        parts.push("rate —");
      }
    }
    replace(this.label, parts.join(" · "));
  }
}
