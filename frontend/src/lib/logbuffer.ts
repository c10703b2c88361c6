// A bounded log buffer with an incrementally maintained filtered view, fed in batches.
//
// Lines arrive in bursts (tens of thousands a second); the buffer keeps at most `capacity` of them,
// drops the oldest, and keeps a list of the lines that pass the current filter so a virtualised view
// can index it directly. Appends are queued and applied once per animation frame by `FrameBatcher`.

import { stripAnsi } from './ansi';
import type { LogLine } from './types';

export interface Entry {
  seq: number;          // increasing across the buffer's life
  time: string;         // RFC 3339 from the engine
  stream: string;       // stdout | stderr
  text: string;         // the line without its trailing newline, escapes kept
  plain: string;        // lowercase, escapes stripped: what search looks at
}

export interface Filter {
  search: string;       // case-insensitive substring; '' = all
  stdout: boolean;
  stderr: boolean;
}

export class LogBuffer {
  readonly capacity: number;
  private ring: (Entry | undefined)[];
  private head = 0;      // index of the oldest entry
  private size = 0;
  private nextSeq = 0;
  private filter: Filter = { search: '', stdout: true, stderr: true };
  /** view holds the entries passing the filter, oldest first. */
  view: Entry[] = [];
  private viewStart = 0; // entries before this index in `view` were evicted
  /** dropped counts lines evicted because of the bound. */
  dropped = 0;

  constructor(capacity = 50_000) {
    this.capacity = capacity;
    this.ring = new Array(capacity);
  }

  get length() { return this.size; }
  get total() { return this.nextSeq; }

  private matches(e: Entry): boolean {
    const f = this.filter;
    if (e.stream === 'stderr' ? !f.stderr : !f.stdout) return false;
    return !f.search || e.plain.includes(f.search);
  }

  append(lines: LogLine[]) {
    const f0 = this.filter;
    let evicted = 0;
    if (lines.length > this.capacity) {
      // Lines that would be evicted by the same batch are never stored.
      const skip = lines.length - this.capacity;
      this.nextSeq += skip;
      this.dropped += skip;
      lines = lines.slice(skip);
    }
    for (const l of lines) {
      let text = l.Data ?? '';
      if (text.endsWith('\n')) text = text.slice(0, -1);
      if (text.endsWith('\r')) text = text.slice(0, -1);
      const e: Entry = { seq: this.nextSeq++, time: l.Time, stream: l.Stream, text, plain: f0.search ? stripAnsi(text).toLowerCase() : '' };
      if (this.size === this.capacity) {
        this.head = (this.head + 1) % this.capacity;
        this.size--;
        this.dropped++;
        evicted++;
      }
      this.ring[(this.head + this.size) % this.capacity] = e;
      this.size++;
      if (this.matches(e)) this.view.push(e);
    }
    if (evicted) this.trimView();
  }

  private oldestSeq(): number {
    return this.size ? this.ring[this.head]!.seq : this.nextSeq;
  }

  private trimView() {
    const min = this.oldestSeq();
    let i = this.viewStart;
    while (i < this.view.length && this.view[i].seq < min) i++;
    this.viewStart = i;
    // Compact now and then rather than shifting on every eviction.
    if (this.viewStart > 4096 && this.viewStart > this.view.length / 2) {
      this.view = this.view.slice(this.viewStart);
      this.viewStart = 0;
    }
  }

  /** visibleCount is how many lines pass the filter. */
  get visibleCount() { return this.view.length - this.viewStart; }
  /** at returns the i-th visible line (0 = oldest). */
  at(i: number): Entry | undefined { return this.view[this.viewStart + i]; }

  /** indexOfSeq returns the index of the first visible line whose seq is at least `seq`. */
  indexOfSeq(seq: number): number {
    let lo = this.viewStart;
    let hi = this.view.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.view[mid].seq < seq) lo = mid + 1; else hi = mid;
    }
    return lo - this.viewStart;
  }

  setFilter(f: Filter) {
    const search = f.search.toLowerCase();
    this.filter = { ...f, search };
    this.view = [];
    this.viewStart = 0;
    for (let k = 0; k < this.size; k++) {
      const e = this.ring[(this.head + k) % this.capacity]!;
      if (search && !e.plain) e.plain = stripAnsi(e.text).toLowerCase();
      if (this.matches(e)) this.view.push(e);
    }
  }

  clear() {
    this.ring = new Array(this.capacity);
    this.head = 0;
    this.size = 0;
    this.view = [];
    this.viewStart = 0;
  }

  /** text renders every buffered line (for saving), escapes stripped. */
  text(timestamps: boolean): string {
    const out: string[] = [];
    for (let k = 0; k < this.size; k++) {
      const e = this.ring[(this.head + k) % this.capacity]!;
      out.push((timestamps ? e.time + ' ' : '') + stripAnsi(e.text));
    }
    return out.join('\n') + (out.length ? '\n' : '');
  }
}

/**
 * FrameBatcher queues items and hands them over at most once per animation frame.
 * `schedule` is injectable for tests (default requestAnimationFrame, or a 16 ms timer).
 */
export class FrameBatcher<T> {
  private q: T[] = [];
  private scheduled = false;
  private flushFn: (items: T[]) => void;
  private schedule: (cb: () => void) => void;
  private max: number;
  /** dropped counts items discarded because more than `max` waited for one frame. */
  dropped = 0;
  private minInterval: (pending: number) => number;
  private last = -Infinity;
  /**
   * max bounds the queue; minInterval (ms, or a function of how many items wait) spaces flushes out
   * under a flood: when every flush replaces all the rows in view anyway, fewer of them cost less and
   * show as much.
   */
  constructor(flush: (items: T[]) => void, schedule?: (cb: () => void) => void, max = 100_000,
    minInterval: number | ((pending: number) => number) = 0) {
    this.flushFn = flush;
    this.max = max;
    this.minInterval = typeof minInterval === 'number' ? () => minInterval : minInterval;
    this.schedule = schedule ?? (typeof requestAnimationFrame === 'function'
      ? (cb) => { requestAnimationFrame(() => cb()); }
      : (cb) => { setTimeout(cb, 16); });
  }
  push(items: T[]) {
    for (const x of items) this.q.push(x);
    if (this.q.length > this.max) {
      // A hidden window gets no frames: keep the newest, like the buffer would.
      this.dropped += this.q.length - this.max;
      this.q = this.q.slice(this.q.length - this.max);
    }
    if (!this.scheduled && this.q.length) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }
  flush() {
    const now = typeof performance === 'undefined' ? Date.now() : performance.now();
    if (this.q.length && now - this.last < this.minInterval(this.q.length)) {
      this.schedule(() => this.flush()); // too soon: the next frame
      return;
    }
    this.last = now;
    this.scheduled = false;
    if (!this.q.length) return;
    const items = this.q;
    this.q = [];
    this.flushFn(items);
  }
  get pending() { return this.q.length; }
}
