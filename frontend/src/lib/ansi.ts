// A small ANSI SGR parser for log lines: colours and weight become spans, other escapes are dropped.

export interface Span { text: string; cls: string; style: string }

const BASIC = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

interface Pen { fg: string; bg: string; bold: boolean; dim: boolean; italic: boolean; underline: boolean }
const fresh = (): Pen => ({ fg: '', bg: '', bold: false, dim: false, italic: false, underline: false });

function xterm256(n: number): string {
  if (n < 16) return '';
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  n -= 16;
  const c = [Math.floor(n / 36), Math.floor(n / 6) % 6, n % 6].map((x) => (x ? 55 + x * 40 : 0));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function apply(p: Pen, codes: number[]) {
  if (!codes.length) codes = [0];
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(p, fresh());
    else if (c === 1) p.bold = true;
    else if (c === 2) p.dim = true;
    else if (c === 3) p.italic = true;
    else if (c === 4) p.underline = true;
    else if (c === 22) { p.bold = false; p.dim = false; }
    else if (c === 23) p.italic = false;
    else if (c === 24) p.underline = false;
    else if (c >= 30 && c <= 37) p.fg = `c-${BASIC[c - 30]}`;
    else if (c >= 90 && c <= 97) p.fg = `c-bright-${BASIC[c - 90]}`;
    else if (c === 39) p.fg = '';
    else if (c >= 40 && c <= 47) p.bg = `bg-${BASIC[c - 40]}`;
    else if (c >= 100 && c <= 107) p.bg = `bg-bright-${BASIC[c - 100]}`;
    else if (c === 49) p.bg = '';
    else if (c === 38 || c === 48) {
      let col = '';
      if (codes[i + 1] === 5) {
        const n = codes[i + 2] ?? 0;
        col = n < 8 ? `${c === 38 ? 'c' : 'bg'}-${BASIC[n]}` : n < 16 ? `${c === 38 ? 'c' : 'bg'}-bright-${BASIC[n - 8]}` : `#${xterm256(n)}`;
        i += 2;
      } else if (codes[i + 1] === 2) {
        col = `#rgb(${codes[i + 2] ?? 0},${codes[i + 3] ?? 0},${codes[i + 4] ?? 0})`;
        i += 4;
      }
      if (c === 38) p.fg = col; else p.bg = col;
    }
  }
}

function spanOf(text: string, p: Pen): Span {
  const cls: string[] = [];
  const style: string[] = [];
  for (const [v, prop] of [[p.fg, 'color'], [p.bg, 'background-color']] as const) {
    if (!v) continue;
    if (v.startsWith('#')) style.push(`${prop}:${v.slice(1)}`);
    else cls.push(v);
  }
  if (p.bold) cls.push('b');
  if (p.dim) cls.push('dim');
  if (p.italic) cls.push('i');
  if (p.underline) cls.push('u');
  return { text, cls: cls.join(' '), style: style.join(';') };
}

// CSI sequences, OSC sequences (ended by BEL or ST), and two-byte escapes.
// eslint-disable-next-line no-control-regex
const ESC = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;

/** parseAnsi splits a line into styled spans. Plain lines cost one regex test. */
export function parseAnsi(line: string): Span[] {
  if (line.indexOf('\x1b') < 0) return [{ text: line, cls: '', style: '' }];
  const out: Span[] = [];
  const pen = fresh();
  let last = 0;
  ESC.lastIndex = 0;
  for (let m = ESC.exec(line); m; m = ESC.exec(line)) {
    if (m.index > last) out.push(spanOf(line.slice(last, m.index), pen));
    last = ESC.lastIndex;
    if (m[2] === 'm') apply(pen, m[1] ? m[1].split(';').map((x) => parseInt(x || '0', 10)) : []);
  }
  if (last < line.length) out.push(spanOf(line.slice(last), pen));
  return out;
}

/** stripAnsi removes every escape sequence (for search and saving). */
export function stripAnsi(line: string): string {
  return line.indexOf('\x1b') < 0 ? line : line.replace(ESC, '');
}
