// Transports carry calls and events between the UI and the app/ services.
//
// Two exist, chosen once at start (see api.ts): Wails bindings in the desktop app
// (window.go.app.<Service>.<Method>, window.runtime.EventsOn) and the socket bridge's
// WebSocket in a browser (docs/contracts.md, "Bridge wire protocol").

export type EventHandler = (data: unknown) => void;
export type ConnState = 'connecting' | 'open' | 'closed';

/** The error every failed call rejects with: app.Error's code and message. */
export class ApiError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code || 'internal';
  }
}

/** toApiError turns whatever a transport rejected with into an ApiError. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (typeof e === 'string') {
    const s = e.trim();
    if (s.startsWith('{')) {
      try { return toApiError(JSON.parse(s)); } catch { /* plain text */ }
    }
    return new ApiError('internal', s);
  }
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    const code = (o.code ?? o.Code) as string | undefined;
    const message = (o.message ?? o.Message) as string | undefined;
    if (code || message) return new ApiError(code ?? 'internal', message ?? String(code));
    if (e instanceof Error) return new ApiError('internal', e.message);
  }
  return new ApiError('internal', String(e));
}

export interface Transport {
  readonly kind: 'wails' | 'ws';
  call(method: string, params: unknown[]): Promise<unknown>;
  /** on listens for an event; the returned function stops listening. */
  on(event: string, cb: EventHandler): () => void;
  /** onState reports connection changes; 'open' after a reconnect means subscriptions were lost. */
  onState(cb: (s: ConnState, reconnected: boolean) => void): () => void;
  close(): void;
}

interface WailsWindow {
  go?: { app?: Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>> };
  runtime?: {
    EventsOn(name: string, cb: (...d: unknown[]) => void): (() => void) | void;
    EventsOff(name: string, ...more: string[]): void;
  };
}

/** WailsTransport calls the bound Go services directly. */
export class WailsTransport implements Transport {
  readonly kind = 'wails' as const;
  private w: WailsWindow;
  constructor(w: WailsWindow = window as unknown as WailsWindow) {
    this.w = w;
  }
  static available(w: unknown = typeof window === 'undefined' ? undefined : window): boolean {
    const ww = w as WailsWindow | undefined;
    return !!(ww && ww.go && ww.go.app && ww.runtime);
  }
  async call(method: string, params: unknown[]): Promise<unknown> {
    const [svc, fn] = method.split('.');
    const f = this.w.go?.app?.[svc]?.[fn];
    if (typeof f !== 'function') throw new ApiError('invalid', `unknown method ${method}`);
    try {
      return await f(...params);
    } catch (e) {
      throw toApiError(e);
    }
  }
  on(event: string, cb: EventHandler): () => void {
    const off = this.w.runtime!.EventsOn(event, (...d: unknown[]) => cb(d[0]));
    return () => {
      if (typeof off === 'function') off();
      else this.w.runtime!.EventsOff(event);
    };
  }
  onState(cb: (s: ConnState, reconnected: boolean) => void): () => void {
    cb('open', false);
    return () => {};
  }
  close(): void {}
}

type WSLike = {
  readyState: number;
  send(d: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
};
export type WSConstructor = new (url: string) => WSLike;

export interface WsOptions {
  WebSocket?: WSConstructor;
  /** reconnect delays in ms, the last one repeats */
  backoff?: number[];
  /** how long a request may wait for its answer (ms); 0 = forever */
  timeout?: number;
}

interface Pending { resolve(v: unknown): void; reject(e: unknown): void; timer?: ReturnType<typeof setTimeout> }

/** The message a call made while the engine cannot be reached fails with. */
export const ENGINE_DOWN = 'the Skiff engine is not running';

/**
 * WsTransport speaks the bridge protocol over a WebSocket: numbered requests, answers matched by id,
 * events by name. It reconnects with backoff. A call is sent at most once, or not at all: calls made
 * before the first connection wait for it; calls made during an outage (the connection was open and
 * is not now) fail at once with 'unavailable'. A call that has failed — its connection attempt failed,
 * it timed out, the connection closed — is forgotten, never sent later.
 * Events for a name nobody listens to yet are kept briefly, since a subscription's first batch can
 * arrive before the caller has learnt the name.
 */
export class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  private url: string;
  private WS: WSConstructor;
  private backoff: number[];
  private timeout: number;
  private ws: WSLike | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  /** calls waiting for the first connection, by id; a call leaves it when sent or failed. */
  private queue = new Map<number, string>();
  private listeners = new Map<string, Set<EventHandler>>();
  private early = new Map<string, { at: number; data: unknown[] }>();
  private stateCbs = new Set<(s: ConnState, r: boolean) => void>();
  private state: ConnState = 'connecting';
  private everOpen = false;
  private attempt = 0;
  private closed = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(url: string, opts: WsOptions = {}) {
    this.url = url;
    this.WS = opts.WebSocket ?? (globalThis.WebSocket as unknown as WSConstructor);
    this.backoff = opts.backoff ?? [250, 500, 1000, 2000, 4000];
    this.timeout = opts.timeout ?? 0;
    this.connect();
  }

  private setState(s: ConnState, reconnected = false) {
    this.state = s;
    for (const cb of this.stateCbs) cb(s, reconnected);
  }

  private connect() {
    if (this.closed) return;
    this.setState('connecting');
    let ws: WSLike;
    try {
      ws = new this.WS(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.everOpen;
      this.everOpen = true;
      this.attempt = 0;
      const q = this.queue;
      this.queue = new Map();
      for (const m of q.values()) ws.send(m);
      this.setState('open', reconnected);
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      // Answers to requests already sent are lost with the connection, and calls still waiting for
      // a first connection fail with it: they are dropped from the queue, so never sent later.
      this.failAll(this.everOpen ? 'connection to Skiff lost' : ENGINE_DOWN);
      this.setState('closed');
      this.scheduleRetry();
    };
  }

  private failAll(message: string) {
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new ApiError('unavailable', message));
    }
    this.pending.clear();
    this.queue.clear();
  }

  private scheduleRetry() {
    if (this.closed) return;
    const d = this.backoff[Math.min(this.attempt, this.backoff.length - 1)];
    this.attempt++;
    this.retryTimer = setTimeout(() => this.connect(), d);
  }

  private onMessage(raw: unknown) {
    let m: { id?: number; result?: unknown; error?: unknown; event?: string; data?: unknown };
    try {
      m = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch {
      return;
    }
    if (typeof m.event === 'string') {
      const ls = this.listeners.get(m.event);
      if (ls && ls.size) {
        for (const cb of [...ls]) cb(m.data);
      } else {
        this.keepEarly(m.event, m.data);
      }
      return;
    }
    if (typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (p.timer) clearTimeout(p.timer);
      if (m.error !== undefined && m.error !== null) p.reject(toApiError(m.error));
      else p.resolve(m.result);
    }
  }

  private keepEarly(name: string, data: unknown) {
    const now = Date.now();
    for (const [k, v] of this.early) if (now - v.at > 5000) this.early.delete(k);
    if (this.early.size > 256) return;
    let e = this.early.get(name);
    if (!e) this.early.set(name, (e = { at: now, data: [] }));
    if (e.data.length < 1024) e.data.push(data);
  }

  call(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new ApiError('unavailable', 'connection closed'));
    const open = !!this.ws && this.ws.readyState === 1 && this.state === 'open';
    // During an outage a call fails now: queued, it would run whenever the engine comes back,
    // long after the user was told it failed (and a retry would then run it twice).
    if (!open && this.everOpen) return Promise.reject(new ApiError('unavailable', ENGINE_DOWN));
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params });
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject };
      if (this.timeout > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          this.queue.delete(id);
          reject(new ApiError('unavailable', `${method}: no answer after ${this.timeout} ms`));
        }, this.timeout);
      }
      this.pending.set(id, p);
      if (open) this.ws!.send(msg);
      else this.queue.set(id, msg);
    });
  }

  on(event: string, cb: EventHandler): () => void {
    let ls = this.listeners.get(event);
    if (!ls) this.listeners.set(event, (ls = new Set()));
    ls.add(cb);
    const e = this.early.get(event);
    if (e) {
      this.early.delete(event);
      for (const d of e.data) cb(d);
    }
    return () => {
      const s = this.listeners.get(event);
      if (!s) return;
      s.delete(cb);
      if (!s.size) this.listeners.delete(event);
    };
  }

  onState(cb: (s: ConnState, reconnected: boolean) => void): () => void {
    this.stateCbs.add(cb);
    cb(this.state, false);
    return () => this.stateCbs.delete(cb);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.failAll('connection closed');
    this.setState('closed');
  }
}
