// A hand-written Transport for tests: methods answered by handlers, events emitted by the test.
import { ApiError, type ConnState, type EventHandler, type Transport } from '../../src/lib/transport';

type Handler = (...params: any[]) => unknown;

export class FakeTransport implements Transport {
  readonly kind: 'wails' | 'ws';
  calls: { method: string; params: unknown[] }[] = [];
  handlers: Record<string, Handler> = {};
  private listeners = new Map<string, Set<EventHandler>>();
  private stateCbs = new Set<(s: ConnState, r: boolean) => void>();

  constructor(handlers: Record<string, Handler> = {}, kind: 'wails' | 'ws' = 'ws') {
    this.handlers = handlers;
    this.kind = kind;
  }
  async call(method: string, params: unknown[]) {
    this.calls.push({ method, params });
    const h = this.handlers[method];
    if (!h) throw new ApiError('invalid', `unknown method ${method}`);
    return await h(...params);
  }
  on(event: string, cb: EventHandler) {
    let s = this.listeners.get(event);
    if (!s) this.listeners.set(event, (s = new Set()));
    s.add(cb);
    return () => { s!.delete(cb); };
  }
  emit(event: string, data: unknown) {
    for (const cb of [...(this.listeners.get(event) ?? [])]) cb(data);
  }
  listening(event: string) { return (this.listeners.get(event)?.size ?? 0) > 0; }
  onState(cb: (s: ConnState, r: boolean) => void) {
    this.stateCbs.add(cb);
    cb('open', false);
    return () => this.stateCbs.delete(cb);
  }
  setState(s: ConnState, reconnected = false) { for (const cb of this.stateCbs) cb(s, reconnected); }
  called(method: string) { return this.calls.filter((c) => c.method === method); }
  close() {}
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** until polls f until it returns truthy or the timeout passes. */
export async function until<T>(f: () => T, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms: ${f}`);
    await tick(10);
  }
}
