// The WebSocket transport while the engine is away: a call is sent at most once, and a call that
// failed is never sent later (tests/fake-bridge.mjs: down() refuses connections as `skiff serve`'s
// proxy does while the engine behind it is stopped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Api, WsTransport, type WSConstructor } from '../../src/lib/transport-index';
import { startFakeBridge } from '../fake-bridge.mjs';
import { tick, until } from './fake-transport';

let bridge: Awaited<ReturnType<typeof startFakeBridge>>;
beforeAll(async () => { bridge = await startFakeBridge({ token: 'sekrit' }); });
afterAll(async () => { await bridge.close(); });

const WS = createRequire(import.meta.url)('ws') as WSConstructor;
const runs = (name: string) => bridge.state.received.filter((r) => r.method === 'Containers.Run' && (r.params[0] as { Name: string }).Name === name).length;

describe('WsTransport during an engine outage', () => {
  it('fails a call made while the engine is down at once and never sends it when the engine returns', async () => {
    const t = new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [30] });
    const api = new Api(t);
    const states: string[] = [];
    api.onState((s) => states.push(s));
    try {
      await api.containers.list(true);
      bridge.down();
      await until(() => states.includes('closed'));
      // Several reconnect attempts fail meanwhile: each would have failed and kept a queued call.
      await tick(150);
      const t0 = Date.now();
      await expect(api.containers.run({ Image: 'busybox', Name: 'outage-1' }))
        .rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('not running') });
      expect(Date.now() - t0).toBeLessThan(100); // failed now, not when the engine returns
      await tick(150);
      // The user retries while still down: fails again.
      await expect(api.containers.run({ Image: 'busybox', Name: 'outage-1' })).rejects.toMatchObject({ code: 'unavailable' });
      bridge.up();
      await until(() => states.filter((s) => s === 'open').length >= 2);
      // A retry once the engine is back runs exactly once.
      await api.containers.run({ Image: 'busybox', Name: 'outage-1' });
      await tick(100);
      expect(runs('outage-1')).toBe(1);
      expect([...bridge.state.containers.values()].filter((c: { Name: string }) => c.Name === 'outage-1')).toHaveLength(1);
    } finally {
      bridge.up();
      api.close();
    }
  });

  it('fails calls waiting for a first connection that cannot be made, and drops them', async () => {
    bridge.down();
    const t = new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [30] });
    try {
      await expect(t.call('Containers.Run', [{ Image: 'busybox', Name: 'outage-2' }]))
        .rejects.toMatchObject({ code: 'unavailable' });
      await tick(100);
      bridge.up();
      let open = false;
      t.onState((s) => { if (s === 'open') open = true; });
      await until(() => open);
      await t.call('Containers.List', [true]);
      expect(runs('outage-2')).toBe(0);
    } finally {
      bridge.up();
      t.close();
    }
  });

  it('drops a queued call that timed out', async () => {
    bridge.down({ stalled: true }); // the connection attempt hangs
    const t = new WsTransport(bridge.wsURL, { WebSocket: WS, backoff: [400], timeout: 20 });
    try {
      await expect(t.call('Containers.Run', [{ Image: 'busybox', Name: 'outage-3' }]))
        .rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('no answer') });
      bridge.up();
      let open = false;
      t.onState((s) => { if (s === 'open') open = true; });
      await until(() => open);
      await tick(50);
      expect(runs('outage-3')).toBe(0);
    } finally {
      bridge.up();
      t.close();
    }
  });
});
