import { describe, expect, it } from 'vitest';
import { FrameBatcher, LogBuffer } from '../../src/lib/logbuffer';
import { parseAnsi, stripAnsi } from '../../src/lib/ansi';
import { fieldOf } from '../../src/lib/fields';
import { ApiError } from '../../src/lib/transport';
import { bytes, duration, splitArgs } from '../../src/lib/format';
import { parseLabels, volumeLabel, volumeUsers } from '../../src/lib/volumes';

const line = (i: number, stream = 'stdout') => ({ Time: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`, Stream: stream, Data: `line ${i}\n` });

describe('LogBuffer', () => {
  it('keeps at most capacity lines, oldest dropped, view in step', () => {
    const b = new LogBuffer(100);
    for (let k = 0; k < 25; k++) b.append(Array.from({ length: 10 }, (_, j) => line(k * 10 + j)));
    expect(b.length).toBe(100);
    expect(b.dropped).toBe(150);
    expect(b.visibleCount).toBe(100);
    expect(b.at(0)!.text).toBe('line 150');
    expect(b.at(99)!.text).toBe('line 249');
  });

  it('filters by stream and search, incrementally and after the fact', () => {
    const b = new LogBuffer(1000);
    b.append([line(1), line(2, 'stderr'), { Time: 't', Stream: 'stdout', Data: '\u001b[31mERROR\u001b[0m disk full\n' }]);
    b.setFilter({ search: 'error', stdout: true, stderr: true });
    expect(b.visibleCount).toBe(1);
    expect(b.at(0)!.text).toContain('disk full');
    b.append([{ Time: 't', Stream: 'stderr', Data: 'another Error\n' }, line(3)]);
    expect(b.visibleCount).toBe(2);
    b.setFilter({ search: '', stdout: false, stderr: true });
    expect([...Array(b.visibleCount)].map((_, i) => b.at(i)!.text)).toEqual(['line 2', 'another Error']);
    expect(b.text(false)).toBe('line 1\nline 2\nERROR disk full\nanother Error\nline 3\n');
  });

  it('skips what one oversized batch would evict anyway', () => {
    const b = new LogBuffer(10);
    b.append([line(0)]);
    b.append(Array.from({ length: 25 }, (_, i) => line(i + 1)));
    expect(b.length).toBe(10);
    expect(b.dropped).toBe(16);
    expect(b.at(0)!.text).toBe('line 16');
    expect(b.at(0)!.seq).toBe(16);
    expect(b.total).toBe(26);
  });

  it('finds a line by seq among the visible ones, after evictions and filtering', () => {
    const b = new LogBuffer(10);
    for (let i = 0; i < 25; i++) b.append([line(i, i % 2 ? 'stderr' : 'stdout')]);
    expect(b.indexOfSeq(15)).toBe(0);
    expect(b.indexOfSeq(20)).toBe(5);
    expect(b.indexOfSeq(3)).toBe(0); // evicted: the oldest left
    expect(b.indexOfSeq(99)).toBe(10);
    b.setFilter({ search: '', stdout: false, stderr: true });
    expect(b.indexOfSeq(17)).toBe(1); // 15, 17, …
    expect(b.indexOfSeq(18)).toBe(2);
  });

  it('evicts filtered entries too when the bound is hit', () => {
    const b = new LogBuffer(10);
    b.setFilter({ search: '', stdout: false, stderr: true });
    for (let i = 0; i < 50; i++) b.append([line(i, i % 2 ? 'stderr' : 'stdout')]);
    expect(b.visibleCount).toBe(5);
    expect(b.at(0)!.text).toBe('line 41');
  });
});

describe('FrameBatcher', () => {
  it('hands over everything pushed within one frame at once, bounded', () => {
    const frames: (() => void)[] = [];
    const got: number[][] = [];
    const fb = new FrameBatcher<number>((xs) => got.push(xs), (cb) => frames.push(cb), 5);
    fb.push([1, 2]);
    fb.push([3]);
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(got).toEqual([[1, 2, 3]]);
    fb.push([4, 5, 6, 7, 8, 9, 10]);
    frames.shift()!();
    expect(got[1]).toEqual([6, 7, 8, 9, 10]);
    expect(fb.dropped).toBe(2);
  });
});

describe('FrameBatcher spacing', () => {
  it('waits for a later frame when the last flush was too recent', () => {
    const frames: (() => void)[] = [];
    const got: number[][] = [];
    const fb = new FrameBatcher<number>((xs) => got.push(xs), (cb) => frames.push(cb), 100, 10_000);
    fb.push([1]);
    frames.shift()!();
    fb.push([2]);
    fb.push([3]);
    frames.shift()!();
    expect(got).toEqual([[1]]);
    expect(frames).toHaveLength(1); // still scheduled, once
  });

  it('spaces flushes by how many items wait', () => {
    const frames: (() => void)[] = [];
    const got: number[][] = [];
    // Few waiting: every frame; many: not within 10 s of the last flush.
    const fb = new FrameBatcher<number>((xs) => got.push(xs), (cb) => frames.push(cb), 100, (n) => (n > 2 ? 10_000 : 0));
    fb.push([1]);
    frames.shift()!();
    fb.push([2]);
    frames.shift()!();
    expect(got).toEqual([[1], [2]]);
    fb.push([3, 4, 5]);
    frames.shift()!();
    expect(got).toHaveLength(2);
    expect(fb.pending).toBe(3);
    expect(frames).toHaveLength(1);
  });
});

describe('ansi', () => {
  it('turns SGR codes into spans and drops other escapes', () => {
    expect(parseAnsi('plain')).toEqual([{ text: 'plain', cls: '', style: '' }]);
    const s = parseAnsi('a\u001b[1;31mred\u001b[0m b\u001b[38;5;196mx\u001b[38;2;1;2;3my\u001b[2Kz');
    expect(s.map((x) => x.text)).toEqual(['a', 'red', ' b', 'x', 'y', 'z']);
    expect(s[1].cls).toBe('c-red b');
    expect(s[2].cls).toBe('');
    expect(s[3].style).toBe('color:rgb(255,0,0)');
    expect(s[4].style).toBe('color:rgb(1,2,3)');
    expect(stripAnsi('\u001b]0;title\u0007\u001b[32mok\u001b[m')).toBe('ok');
  });
});

describe('fieldOf', () => {
  it.each([
    ['invalid port mapping "x": not a number (expected [ip:]hostPort:containerPort[/tcp|udp])', 'ports'],
    ['invalid volume "/a": expected /host/path:/container/path[:ro]', 'volumes'],
    ['invalid environment variable "PORT": expected KEY=VALUE', 'env'],
    ['invalid --memory "lots": expected a size such as 512m or 2g', 'memory'],
    ['invalid --cpus "x": expected a number such as 1 or 1.5', 'cpus'],
    ['invalid --restart "sometimes": expected no, on-failure[:N], always or unless-stopped', 'restart'],
    ['conflicting options: --restart always and --rm', 'restart'],
    ['invalid container name "a b": only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed', 'name'],
    ['an image is required', 'image'],
    ['pulling "nope": manifest unknown', 'image'],
    ['disk on fire', 'general'],
  ])('%s → %s', (msg, field) => {
    expect(fieldOf(new ApiError('invalid', msg))).toBe(field);
  });
});

describe('format', () => {
  it('splits command lines like a shell', () => {
    expect(splitArgs(`sh -c 'echo "hi there"; ls'`)).toEqual(['sh', '-c', 'echo "hi there"; ls']);
    expect(splitArgs('a  "b c" d\\ e ""')).toEqual(['a', 'b c', 'd e', '']);
    expect(() => splitArgs('"open')).toThrow(/unclosed/);
  });
  it('renders sizes and durations', () => {
    expect(bytes(2_180_000)).toBe('2.2 MB');
    expect(bytes(512)).toBe('512 B');
    expect(duration(59_000)).toBe('59s');
    expect(duration(3_725_000)).toBe('1h 2m');
  });
});

import { rowHTML } from '../../src/lib/rowhtml';
describe('rowHTML', () => {
  const entry = (text: string) => ({ seq: 1, time: '2026-01-01T10:11:12.345Z', stream: 'stdout', text, plain: '' });
  it('escapes the line, keeps colours, marks matches', () => {
    const h = rowHTML(entry('<img src=x onerror=alert(1)> \u001b[31mred & "quoted"\u001b[0m'), false, 'red');
    expect(h).toBe('<span class="txt">&lt;img src=x onerror=alert(1)&gt; <span class="c-red"><mark>red</mark> &amp; &quot;quoted&quot;</span></span>');
    const div = document.createElement('div');
    div.innerHTML = h;
    expect(div.querySelector('img')).toBeNull();
    expect(div.textContent).toBe('<img src=x onerror=alert(1)> red & "quoted"');
  });
  it('adds the time, with its date, when asked and re-renders when the search changes', () => {
    const e = entry('abc abc');
    expect(rowHTML(e, true, '')).toMatch(/^<span class="ts">\d{4}-\d\d-\d\d \d\d:\d\d:12\.345<\/span>/);
    expect(rowHTML(e, false, 'b')).toBe('<span class="txt">a<mark>b</mark>c a<mark>b</mark>c</span>');
  });
});

describe('volumes', () => {
  it('parses labels separated by commas or lines and names a malformed one', () => {
    expect(parseLabels('')).toEqual({ labels: [], error: '' });
    expect(parseLabels('a=1, b = two words\nc=')).toEqual({ labels: ['a=1', 'b=two words', 'c='], error: '' });
    expect(parseLabels('a=1, nokey').error).toContain('“nokey”');
    expect(parseLabels('=v').error).toContain('“=v”');
    expect(parseLabels('my key=v').error).toContain('no spaces in the key');
  });
  it('names the containers a volume is used by, and shortens anonymous names', () => {
    const v = { Name: 'ab'.repeat(32), Driver: 'local', Labels: null, Options: null, Created: '', Anonymous: true, Shared: false, Mountpoint: '', UsedBy: ['c'.repeat(64), 'd'.repeat(64)], Size: -1 };
    const cs = [{ ID: 'c'.repeat(64), Name: 'web' }] as never[];
    expect(volumeUsers(v, cs)).toEqual([{ id: 'c'.repeat(64), name: 'web' }, { id: 'd'.repeat(64), name: 'd'.repeat(12) }]);
    expect(volumeLabel(v)).toBe('ab'.repeat(6));
    expect(volumeLabel({ ...v, Name: 'data' })).toBe('data');
    expect(volumeLabel({ ...v, Anonymous: false })).toBe(v.Name);
  });
});
