import { describe, expect, it } from 'vitest';
import { envPairs, logRange, logTime, niceMax, portURL, rates, timeTicks, windowed, WrapLayout } from '../../src/lib/detail';
import type { Stats } from '../../src/lib/types';

describe('detail view helpers', () => {
  it('opens a published port on loopback when it listens on every address', () => {
    expect(portURL({ HostIP: '0.0.0.0', HostPort: 8080, ContainerPort: 80, Proto: 'tcp' })).toBe('http://localhost:8080/');
    expect(portURL({ HostIP: '', HostPort: 81, ContainerPort: 80, Proto: 'tcp' })).toBe('http://localhost:81/');
    expect(portURL({ HostIP: '127.0.0.2', HostPort: 82, ContainerPort: 80, Proto: 'tcp' })).toBe('http://127.0.0.2:82/');
  });

  it('dates log timestamps', () => {
    const d = new Date(2026, 11, 6, 9, 5, 7, 42);
    expect(logTime(d.toISOString())).toBe('2026-12-06 09:05:07.042');
    expect(logTime('garbage')).toBe('');
  });

  it('turns a From/To range into the query, following only an open end, refusing a reversed one', () => {
    const r = logRange('2026-12-06T10:00:00', '');
    expect(r).toEqual({ Since: new Date(2026, 11, 6, 10).toISOString(), Until: '', Follow: true, error: '' });
    const both = logRange('2026-12-06T10:00', '2026-12-06T11:00');
    expect(both.Follow).toBe(false);
    expect(both.Until).toBe(new Date(2026, 11, 6, 11).toISOString());
    expect(logRange('2026-12-06T11:00', '2026-12-06T10:00').error).toBe('The start of the range must be before its end.');
    expect(logRange('soon', '').error).toContain('“soon” is not a date');
    expect(logRange('', '')).toEqual({ Since: '', Until: '', Follow: true, error: '' });
  });

  it('lays wrapped lines out as rows and finds the line of a row', () => {
    const l = new WrapLayout([10, 0, 25, 5], 10);
    expect([...l.offsets]).toEqual([0, 1, 2, 5, 6]);
    expect(l.total).toBe(6);
    expect(l.rows(2)).toBe(3);
    expect([0, 1, 2, 3, 4, 5, 99].map((r) => l.lineAt(r))).toEqual([0, 1, 2, 2, 2, 3, 3]);
    expect(new WrapLayout([], 80).lineAt(0)).toBe(0);
  });

  it('charts a time window of samples with rates, a round top and time labels', () => {
    const s = (sec: number, rx: number): Stats => ({ Time: new Date(1_000_000 + sec * 1000).toISOString(), NetRx: rx } as Stats);
    const h = [s(0, 0), s(100, 1000), s(101, 3000), s(102, 3000)];
    expect(windowed(h, 60, 1_000_000 + 102_000)).toHaveLength(3);
    expect(rates(windowed(h, 60, 1_000_000 + 102_000), 'NetRx').map((p) => p.v)).toEqual([2000, 0]);
    expect([0, 0.3, 7, 10, 11, 420].map(niceMax)).toEqual([1, 0.5, 10, 10, 20, 500]);
    expect(timeTicks(300).map((t) => t.label)).toEqual(['-5 min', '-2.5 min', 'now']);
    expect(timeTicks(60).map((t) => t.label)).toEqual(['-1 min', '-30 s', 'now']);
  });

  it('splits environment variables at the first =', () => {
    expect(envPairs(['A=1', 'B=x=y', 'C'])).toEqual([{ key: 'A', value: '1' }, { key: 'B', value: 'x=y' }, { key: 'C', value: '' }]);
    expect(envPairs(null)).toEqual([]);
  });
});
