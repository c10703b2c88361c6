// rowHTML renders one log line as HTML: ANSI spans, search marks, optional timestamp. Every piece of
// text is escaped; the markup is ours. One string per row keeps the virtualised list cheap to update.
import { parseAnsi } from './ansi';
import type { Entry } from './logbuffer';
import { logTime } from './detail';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHTML = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]);

function marked(text: string, needle: string): string {
  if (!needle) return escapeHTML(text);
  const low = text.toLowerCase();
  let out = '';
  let i = 0;
  for (let k = low.indexOf(needle); k >= 0; k = low.indexOf(needle, i)) {
    out += escapeHTML(text.slice(i, k)) + '<mark>' + escapeHTML(text.slice(k, k + needle.length)) + '</mark>';
    i = k + needle.length;
  }
  return out + escapeHTML(text.slice(i));
}

/** fmtTime is a line's timestamp with its date (logTime). */
export const fmtTime = logTime;

const cache = new WeakMap<Entry, { key: string; html: string }>();

/** rowHTML is cached per entry for the current (timestamps, search) pair. */
export function rowHTML(e: Entry, timestamps: boolean, needle: string): string {
  const key = `${timestamps ? 1 : 0}\u0000${needle}`;
  const c = cache.get(e);
  if (c && c.key === key) return c.html;
  let html = timestamps ? `<span class="ts">${fmtTime(e.time)}</span>` : '';
  html += '<span class="txt">';
  for (const s of parseAnsi(e.text)) {
    const inner = marked(s.text, needle);
    html += s.cls || s.style ? `<span class="${escapeHTML(s.cls)}"${s.style ? ` style="${escapeHTML(s.style)}"` : ''}>${inner}</span>` : inner;
  }
  html += '</span>';
  cache.set(e, { key, html });
  return html;
}
