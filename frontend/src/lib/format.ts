// Formatting helpers shared by the views.

const ZERO = '0001-01-01T00:00:00Z';

export function isZeroTime(t: string | undefined | null): boolean {
  return !t || t.startsWith('0001-01-01');
}

export function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !isFinite(n)) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
}

/** duration renders milliseconds as "42s", "5m 3s", "2h 5m", "3d 4h". */
export function duration(ms: number): string {
  if (!isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function ago(t: string, now = Date.now()): string {
  if (isZeroTime(t)) return '—';
  const d = now - Date.parse(t);
  if (!isFinite(d)) return '—';
  if (d > 30 * 86400_000) return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  return `${duration(d)} ago`;
}

/** day is a date as the lists show it ("Mar 5, 2026" in English). */
export function day(t: string): string {
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

export function shortID(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function imageName(i: { RepoTags: string[] | null; ID: string }): string {
  return i.RepoTags && i.RepoTags.length ? i.RepoTags[0].replace(/^docker\.io\/(library\/)?/, '') : `<none> ${shortID(i.ID)}`;
}

export function percent(v: number | undefined): string {
  return v === undefined || !isFinite(v) ? '—' : `${v.toFixed(v < 10 ? 1 : 0)}%`;
}

/** splitArgs splits a command line like a shell would for simple quoting ('…', "…", \x). */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | null = null;
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") { q = c; has = true; }
    else if (c === '\\' && i + 1 < s.length) { cur += s[++i]; has = true; }
    else if (/\s/.test(c)) { if (has || cur) out.push(cur); cur = ''; has = false; }
    else { cur += c; has = true; }
  }
  if (q) throw new Error(`unclosed quote ${q}`);
  if (has || cur) out.push(cur);
  return out;
}

export { ZERO };
