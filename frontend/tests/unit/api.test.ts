import { describe, expect, it } from 'vitest';
import { Api, ApiError, asArray, toApiError, toBase64, fromBase64Text, WailsTransport, wsURL } from '../../src/lib/api';
import { FakeTransport, tick, until } from './fake-transport';

describe('Api subscriptions', () => {
  it('delivers batches, ends on <name>:end and unsubscribes on close', async () => {
    let n = 0;
    const t = new FakeTransport({
      'Containers.SubscribeLogs': () => `logs:${++n}`,
      'Containers.Unsubscribe': () => null,
    });
    const api = new Api(t);
    const got: string[] = [];
    let ended: unknown = null;
    const sub = await api.subscribeLogs('c1', { Follow: true }, (ls) => got.push(...ls.map((l) => l.Data)), (e) => (ended = e));
    expect(sub.name).toBe('logs:1');
    expect(t.called('Containers.SubscribeLogs')[0].params).toEqual(['c1',
      { Tail: 0, Since: '', Until: '', Timestamps: true, Stdout: false, Stderr: false, Follow: true }]);
    t.emit('logs:1', [{ Time: 't', Stream: 'stdout', Data: 'a\n' }, { Time: 't', Stream: 'stderr', Data: 'b\n' }]);
    expect(got).toEqual(['a\n', 'b\n']);
    t.emit('logs:1:end', { error: 'container stopped' });
    expect(ended).toEqual({ error: 'container stopped' });
    t.emit('logs:1', [{ Time: 't', Stream: 'stdout', Data: 'late\n' }]);
    expect(got).toHaveLength(2);

    const sub2 = await api.subscribeLogs('c1', {}, () => {});
    sub2.close();
    expect(t.called('Containers.Unsubscribe').map((c) => c.params[0])).toEqual(['logs:2']);
    expect(t.listening('logs:2')).toBe(false);
  });

  it('subscribes again after the bridge reconnects and moves the handler to the new name', async () => {
    let n = 0;
    const t = new FakeTransport({ 'Containers.SubscribeStats': () => `stats:${++n}`, 'Containers.Unsubscribe': () => null });
    const api = new Api(t);
    const cpu: number[] = [];
    await api.subscribeStats('c1', (s) => cpu.push(s.CPUPercent));
    t.emit('stats:1', { CPUPercent: 1 });
    t.setState('closed');
    t.setState('open', true);
    await until(() => t.listening('stats:2'));
    expect(t.listening('stats:1')).toBe(false);
    t.emit('stats:2', { CPUPercent: 2 });
    expect(cpu).toEqual([1, 2]);
  });

  it('reports a failed Subscribe call as an ApiError with its code', async () => {
    const t = new FakeTransport({ 'Containers.SubscribeLogs': () => { throw new ApiError('not_found', 'no such container: x'); } });
    const api = new Api(t);
    await expect(api.subscribeLogs('x', {}, () => {})).rejects.toMatchObject({ code: 'not_found', message: 'no such container: x' });
  });

  it('wires sessions: output, exit, input as base64, resize; Ready on Wails', async () => {
    const t = new FakeTransport({
      'Containers.ExecStart': () => 'exec:7', 'Containers.SessionInput': () => null,
      'Containers.SessionResize': () => null, 'Containers.Ready': () => null, 'Containers.Unsubscribe': () => null,
    }, 'wails');
    const api = new Api(t);
    const sid = await api.containers.execStart('c1', { Cmd: ['sh'], TTY: true, Interactive: true, Rows: 24, Cols: 80 });
    const out: string[] = [];
    let code = -99;
    const s = api.session(sid, (o) => out.push(fromBase64Text(o.data)), (e) => (code = e.code));
    expect(t.called('Containers.Ready')[0].params).toEqual(['exec:7']);
    t.emit('session:exec:7', [{ stream: 'stdout', data: toBase64('héllo') }]);
    await s.input('ls\r');
    await s.resize(30, 100);
    expect(t.called('Containers.SessionInput')[0].params).toEqual(['exec:7', toBase64('ls\r')]);
    expect(t.called('Containers.SessionResize')[0].params).toEqual(['exec:7', 30, 100]);
    t.emit('session-exit:exec:7', { code: 3 });
    expect(out).toEqual(['héllo']);
    expect(code).toBe(3);
    s.dispose();
    expect(t.called('Containers.Unsubscribe')).toHaveLength(0); // already exited
  });
});

describe('session input', () => {
  it('keeps keystrokes in order when calls may complete out of order', async () => {
    const got: string[] = [];
    const t = new FakeTransport({
      'Containers.SessionInput': async (_sid: string, b64: string) => {
        // Answer later calls sooner, as a concurrent server might.
        await tick(got.length === 0 ? 30 : 1);
        got.push(fromBase64Text(b64));
      },
    });
    const api = new Api(t);
    const s = api.session('exec:1', () => {}, () => {});
    await Promise.all('exit\r'.split('').map((ch) => s.input(ch)));
    expect(got.join('')).toBe('exit\r');
    expect(got[0]).toBe('e');          // the first key went alone,
    expect(got.length).toBeLessThan(5); // the rest were coalesced behind it
  });
});

describe('Api.call', () => {
  it('is typed by the method table generated from Go (svelte-check fails if an expectation below is not an error)', async () => {
    const t = new FakeTransport({ 'Containers.Stop': () => null, 'Containers.Wait': () => 3 });
    const api = new Api(t);
    const code: number = await api.call('Containers.Wait', 'c1');
    expect(code).toBe(3);
    await api.call('Containers.Stop', 'c1', 10);
    // @ts-expect-error Containers.Stop takes (id, timeoutSec)
    await api.call('Containers.Stop', 'c1');
    // @ts-expect-error timeoutSec is a number
    await api.call('Containers.Stop', 'c1', '10');
    // @ts-expect-error no such method
    await expect(api.call('Containers.Nope')).rejects.toBeInstanceOf(ApiError);
    expect(t.calls.map((c) => [c.method, c.params])).toEqual([
      ['Containers.Wait', ['c1']], ['Containers.Stop', ['c1', 10]], ['Containers.Stop', ['c1']],
      ['Containers.Stop', ['c1', '10']], ['Containers.Nope', []],
    ]);
  });
});

describe('WailsTransport', () => {
  it('calls the bound bridge.Relay and maps rejections to ApiError', async () => {
    const calls: unknown[][] = [];
    const listeners: Record<string, (d: unknown) => void> = {};
    const methods: Record<string, (...a: unknown[]) => unknown> = {
      'Containers.List': (...a: unknown[]) => { calls.push(a); return [{ ID: 'x' }]; },
      'Containers.Remove': () => { throw { code: 'conflict', message: 'container web is running' }; },
      'Containers.Start': () => { throw 'plain failure'; },
    };
    const w = {
      go: { bridge: { Relay: { Call: async (method: string, params: unknown[]) => {
        const f = methods[method];
        if (!f) throw { code: 'not_found', message: `unknown method "${method}"` };
        return f(...params);
      } } } },
      runtime: {
        EventsOn: (n: string, cb: (d: unknown) => void) => { listeners[n] = cb; return () => delete listeners[n]; },
        EventsOff: () => {},
      },
    };
    expect(WailsTransport.available(w)).toBe(true);
    expect(WailsTransport.available({})).toBe(false);
    const t = new WailsTransport(w as never);
    expect(await t.call('Containers.List', [true])).toEqual([{ ID: 'x' }]);
    expect(calls).toEqual([[true]]);
    await expect(t.call('Containers.Remove', ['web', false])).rejects.toMatchObject({ code: 'conflict', message: 'container web is running' });
    await expect(t.call('Containers.Start', ['web'])).rejects.toMatchObject({ code: 'internal', message: 'plain failure' });
    await expect(t.call('Nope.Method', [])).rejects.toMatchObject({ code: 'not_found' });
    const got: unknown[] = [];
    const off = t.on('stats:1', (d) => got.push(d));
    listeners['stats:1']({ CPUPercent: 5 });
    off();
    expect(listeners['stats:1']).toBeUndefined();
    expect(got).toEqual([{ CPUPercent: 5 }]);
  });
});

describe('helpers', () => {
  it('normalises errors and batches', async () => {
    expect(toApiError('{"code":"invalid","message":"bad"}')).toMatchObject({ code: 'invalid', message: 'bad' });
    expect(toApiError({ Code: 'not_found', Message: 'gone' })).toMatchObject({ code: 'not_found', message: 'gone' });
    expect(toApiError(new Error('boom'))).toMatchObject({ code: 'internal', message: 'boom' });
    expect(asArray(null)).toEqual([]);
    expect(asArray({ a: 1 })).toEqual([{ a: 1 }]);
    expect(asArray([1, 2])).toEqual([1, 2]);
    expect(fromBase64Text(toBase64('∑ ✓ \u001b[0m'))).toBe('∑ ✓ \u001b[0m');
    await tick();
  });
});

describe('wsURL', () => {
  const loc = (href: string) => new URL(href) as unknown as Location;
  it('relies on the cookie when the page URL has no token (after skiff serve\'s redirect)', () => {
    expect(wsURL(loc('http://127.0.0.1:8470/#/containers'))).toBe('ws://127.0.0.1:8470/api/ws');
    expect(wsURL(loc('http://localhost:8470/?x=1#/logs/abc'))).toBe('ws://localhost:8470/api/ws');
  });
  it('passes on a token still in the page URL', () => {
    expect(wsURL(loc('http://127.0.0.1:8470/?token=a+b#/images'))).toBe('ws://127.0.0.1:8470/api/ws?token=a%20b');
    expect(wsURL(loc('https://host.example/?token=t'))).toBe('wss://host.example/api/ws?token=t');
  });
});
