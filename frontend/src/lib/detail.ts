// The container detail view's pure parts: port links, log time ranges, wrapped-row layout, chart windows.
import type { PortMapping, Stats } from './types';

/** portURL is the address a published port opens in the browser (loopback when it listens on all). */
export function portURL(p: PortMapping): string {
  const host = !p.HostIP || p.HostIP === '0.0.0.0' || p.HostIP === '::' ? 'localhost' : p.HostIP;
  return `http://${host}:${p.HostPort}/`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** logTime renders a log line's time with its date, in local time: "2026-12-06 14:03:07.123". */
export function logTime(t: string): string {
  const d = new Date(t);
  if (isNaN(+d)) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/**
 * logRange turns the range inputs (datetime-local values, local time; '' for open) into the log query's
 * Since/Until (RFC 3339) and whether to follow (only with no end). A bad or reversed range is an error.
 */
export function logRange(since: string, until: string): { Since: string; Until: string; Follow: boolean; error: string } {
  const conv = (v: string, what: string): string => {
    if (!v) return '';
    const d = new Date(v);
    if (isNaN(+d)) throw new Error(`${what}: “${v}” is not a date and time`);
    return d.toISOString();
  };
  try {
    const s = conv(since, 'From');
    const u = conv(until, 'To');
    if (s && u && s >= u) return { Since: '', Until: '', Follow: true, error: 'The start of the range must be before its end.' };
    return { Since: s, Until: u, Follow: !u, error: '' };
  } catch (e) {
    return { Since: '', Until: '', Follow: true, error: (e as Error).message };
  }
}

/**
 * WrapLayout places log lines of different lengths as rows of fixed height: line i takes
 * ceil(len/cols) rows (at least 1), starting at row offsets[i]; offsets[n] is the total.
 */
export class WrapLayout {
  readonly offsets: Uint32Array;
  constructor(lengths: ArrayLike<number>, readonly cols: number) {
    const c = Math.max(1, Math.floor(cols));
    this.offsets = new Uint32Array(lengths.length + 1);
    for (let i = 0; i < lengths.length; i++) this.offsets[i + 1] = this.offsets[i] + Math.max(1, Math.ceil(lengths[i] / c));
  }
  get total(): number { return this.offsets[this.offsets.length - 1]; }
  rows(i: number): number { return this.offsets[i + 1] - this.offsets[i]; }
  /** lineAt is the line that row r falls in (the last line for rows past the end). */
  lineAt(r: number): number {
    let lo = 0;
    let hi = this.offsets.length - 2;
    if (hi < 0) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= r) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
}

/** The time windows the stats charts offer, in seconds. */
export const STATS_WINDOWS = [[60, '1 min'], [300, '5 min'], [900, '15 min']] as const;

/** windowed is the samples of the last `seconds` before `now` (ms), oldest first. */
export function windowed(history: Stats[], seconds: number, now: number): Stats[] {
  const from = now - seconds * 1000;
  return history.filter((s) => Date.parse(s.Time) >= from);
}

/** rates are per-second rates of a cumulative counter, each at the later sample's time. */
export function rates(history: Stats[], key: 'NetRx' | 'NetTx' | 'BlockRead' | 'BlockWrite'): { t: number; v: number }[] {
  const out: { t: number; v: number }[] = [];
  for (let i = 1; i < history.length; i++) {
    const t = Date.parse(history[i].Time);
    const dt = (t - Date.parse(history[i - 1].Time)) / 1000;
    out.push({ t, v: dt > 0 ? Math.max(0, (history[i][key] - history[i - 1][key]) / dt) : 0 });
  }
  return out;
}

/** niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten. */
export function niceMax(v: number): number {
  if (!(v > 0) || !isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** timeTicks labels the x axis of a window: e.g. for 300 s, "-5 min", "-2.5 min", "now" at 0, ½, 1. */
export function timeTicks(seconds: number): { at: number; label: string }[] {
  const fmt = (s: number) => (s >= 60 ? `-${+(s / 60).toFixed(1)} min` : `-${s} s`);
  return [{ at: 0, label: fmt(seconds) }, { at: 0.5, label: fmt(seconds / 2) }, { at: 1, label: 'now' }];
}

/** envPairs splits KEY=VALUE entries for display (a value may contain '='). */
export function envPairs(env: string[] | null | undefined): { key: string; value: string }[] {
  return (env ?? []).map((e) => {
    const k = e.indexOf('=');
    return k < 0 ? { key: e, value: '' } : { key: e.slice(0, k), value: e.slice(k + 1) };
  });
}
