// The WebSocket transport against a real server speaking the bridge protocol (tests/fake-bridge.mjs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Api, WsTransport, type WSConstructor } from '../../src/lib/transport-index';
import { servedMethods, startFakeBridge, unservedMethods } from '../fake-bridge.mjs';
import { until } from './fake-transport';

let bridge: Awaited<ReturnType<typeof startFakeBridge>>;
beforeAll(async () => { bridge = await startFakeBridge({ token: 'sekrit', linesPerTick: 2 }); });
afterAll(async () => { await bridge.close(); });

const WS = createRequire(import.meta.url)('ws') as WSConstructor; // the Node build, not the browser stub

describe('WsTransport', () => {
  it('matches answers to ids, carries errors with codes, and streams subscription events', async () => {
    const api = new Api(new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [20] }));
    try {
      // Calls made before the socket opens are queued.
      const [a, b] = await Promise.all([api.containers.list(true), api.images.list()]);
      expect(a).toEqual([]);
      expect(b[0].RepoTags).toContain('docker.io/library/busybox:latest');

      await expect(api.containers.run({ Image: 'busybox', Ports: ['nope'] }))
        .rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('invalid port mapping "nope"') });
      await expect(api.containers.inspect('missing')).rejects.toMatchObject({ code: 'not_found' });

      const c = await api.containers.run({ Image: 'busybox', Name: 'web', Ports: ['8080:80'] });
      expect(c.Ports).toEqual([{ HostIP: '127.0.0.1', HostPort: 8080, ContainerPort: 80, Proto: 'tcp' }]);
      const lines: string[] = [];
      const sub = await api.subscribeLogs(c.ID, { Follow: true }, (ls) => lines.push(...ls.map((l) => l.Data)));
      await until(() => lines.length >= 4);
      expect(lines[0]).toMatch(/^line 0 /);

      // The console arrives as text, as the Go side emits it (api.gen.ts: EventPayloads.console).
      let consoleText = '';
      const con = await api.subscribeConsole(c.ID, (s) => (consoleText += s));
      await until(() => consoleText.includes('skiff-agent: ready'));
      con.close();

      // Events of the engine arrive on their own subscription.
      const actions: string[] = [];
      await api.subscribeEvents((e) => actions.push(e.Action));
      await api.containers.stop(c.ID);
      await until(() => actions.includes('die'));
      sub.close();
    } finally {
      api.close();
    }
  });

  it('reconnects after the connection drops and subscribes again', async () => {
    const t = new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [20] });
    const api = new Api(t);
    const states: string[] = [];
    api.onState((s) => states.push(s));
    try {
      const c = await api.containers.run({ Image: 'busybox', Name: 'again' });
      const seen: number[] = [];
      const sub = await api.subscribeStats(c.ID, (s) => seen.push(s.PIDs));
      const first = sub.name;
      await until(() => seen.length >= 1);
      bridge.dropAll();
      await until(() => states.filter((s) => s === 'open').length >= 2);
      await until(() => sub.name !== first);
      const before = seen.length;
      await until(() => seen.length > before);
      // A call in flight when the socket died fails with 'unavailable'; new calls work again.
      expect((await api.containers.list(true)).some((x) => x.Name === 'again')).toBe(true);
    } finally {
      api.close();
    }
  });

  it('keeps events that arrive before the listener and hands them over', async () => {
    const api = new Api(new WsTransport(bridge.wsURL, { WebSocket: WS }));
    try {
      const c = await api.containers.run({ Image: 'busybox', Name: 'early' });
      const sid = await api.containers.execStart(c.ID, { Cmd: ['sh'], TTY: true, Interactive: true, Rows: 24, Cols: 80 });
      await until(() => bridge.state.sent.has(`session:${sid}`)); // the prompt went out before we listen
      await new Promise((r) => setTimeout(r, 20));
      const out: string[] = [];
      const s = api.session(sid, (o) => out.push(Buffer.from(o.data, 'base64').toString()), () => {});
      expect(out.join('')).toBe('/ # ');
      await s.input('echo hi\r');
      await until(() => out.join('').includes('hi\r\n/ # '));
      s.dispose();
    } finally {
      api.close();
    }
  });

  it('rejects pending calls when closed and fails with a wrong token', async () => {
    const bad = new WsTransport(bridge.wsURL.replace('sekrit', 'wrong'), { WebSocket: WS, backoff: [5000], timeout: 300 });
    await expect(bad.call('Containers.List', [true])).rejects.toMatchObject({ code: 'unavailable' });
    bad.close();
    await expect(bad.call('Containers.List', [true])).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('fake bridge volumes', () => {
  it('creates with labels, measures on Inspect only, refuses to remove one in use with the engine\'s words, prunes', async () => {
    const api = new Api(new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [20] }));
    try {
      const v = await api.volumes.create('pg', ['tier=db']);
      expect(v).toMatchObject({ Name: 'pg', Labels: { tier: 'db' }, Anonymous: false });
      await expect(api.volumes.create('x', ['nokey'])).rejects.toMatchObject({ code: 'invalid' });
      const c = await api.containers.run({ Image: 'busybox', Name: 'db', Volumes: ['pg:/var/lib/pg'] });
      const listed = await api.volumes.list();
      expect(listed.find((x) => x.Name === 'pg')).toMatchObject({ UsedBy: [c.ID], Size: -1 });
      expect((await api.volumes.inspect('data')).Size).toBeGreaterThan(0);
      await expect(api.volumes.remove('pg', false)).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining(`in use by container(s) [${c.ID.slice(0, 12)}]`) });
      await api.volumes.remove('gone', true); // force: a missing volume is no error
      await api.containers.remove(c.ID, true);
      expect((await api.volumes.prune(false)).Removed).toEqual([]);
      expect((await api.volumes.prune(true)).Removed!.sort()).toEqual(['data', 'pg']);
      expect(await api.volumes.list()).toEqual([]);
    } finally {
      api.close();
    }
  });
});

describe('fake bridge', () => {
  it('fakes only methods the Go services serve (api.gen.ts) and answers the others as the Go side would', async () => {
    expect(servedMethods()).toContain('Containers.List');
    expect(unservedMethods()).toEqual([]);
    const t = new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [20] });
    try {
      await expect(t.call('Images.Prune', [])).rejects.toMatchObject({ code: 'unavailable' });
      await expect(t.call('Containers.Nope', [])).rejects.toMatchObject({ code: 'not_found' });
    } finally {
      t.close();
    }
  });
});
