/**
 * A one-line progress bar for long CLI operations, drawn on a terminal only: `ProgressBar.onTty(stream, ...)`
 * returns undefined when the stream is not a TTY (a pipe, a file, CI), so scripted output stays clean.
 */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** Redraws at most this often. */
const REDRAW_MS = 100;

export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #total: number;
  readonly #label: string;
  readonly #clock: () => number;
  #last = 0;
  #drawn = false;

  private constructor(stream: ProgressStream, total: number, label: string, clock: () => number) {
    this.#stream = stream;
    this.#total = Math.max(1, total);
    this.#label = label;
    this.#clock = clock;
  }

  /** A bar on `stream` when it is a TTY; otherwise undefined (draw nothing). */
  static onTty(stream: ProgressStream, total: number, label: string, clock: () => number = Date.now): ProgressBar | undefined {
    return stream.isTTY === true ? new ProgressBar(stream, total, label, clock) : undefined;
  }

  /** `done` of `total` units; redrawn at most every 100 ms. */
  update(done: number): void {
    const now = this.#clock();
    if (this.#drawn && now - this.#last < REDRAW_MS) return;
    this.#last = now;
    this.#drawn = true;
    this.#stream.write(`\r${this.render(done)}`);
  }

  /** Erases the bar (call before printing the summary). */
  finish(): void {
    if (this.#drawn) this.#stream.write('\r\x1b[2K');
  }

  render(done: number): string {
    const fraction = Math.min(1, Math.max(0, done / this.#total));
    const counts = `${Math.round(fraction * 100)}%  ${done.toLocaleString('en-US')} / ${this.#total.toLocaleString('en-US')}`;
    const width = Math.max(10, Math.min(40, (this.#stream.columns ?? 80) - this.#label.length - counts.length - 6));
    const filled = Math.round(fraction * width);
    return `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${counts}`;
  }
}
