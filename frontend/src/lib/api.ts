// The one module of the UI that talks to Skiff. Everything else calls `api`.
//
//   const api = createApi();                       // Wails bindings or the WebSocket bridge
//   const list = await api.containers.list(true);
//   const sub = await api.subscribeLogs(id, { Follow: true, Tail: 500 }, lines => ...);
//   sub.close();
//
// Subscriptions are kept across a reconnect of the bridge: the Subscribe* call is made again and the
// handler moves to the new event name (the server ends subscriptions when a connection closes).

import {
  ApiError, toApiError, WailsTransport, WsTransport,
  type ConnState, type Transport, type WsOptions,
} from './transport';
import type {
  EngineEvent, EventPayloads, ExecRequest, LogLine, LogQuery, LogQueryInput, Methods, Progress,
  RunInput, RunRequest, SessionExit, SessionOutput, SettingsUpdate, Stats, StreamEnd,
} from './types';

export { ApiError, toApiError, WailsTransport, WsTransport };
export type { Transport, ConnState };

/** A live subscription; close() unsubscribes on the server and stops the handler. */
export interface Subscription {
  readonly name: string;
  close(): void;
}

/** asArray accepts a batch (array) or a single payload. */
export function asArray<T>(d: unknown): T[] {
  if (d === null || d === undefined) return [];
  return Array.isArray(d) ? (d as T[]) : [d as T];
}

let seq = 0;
/** newProgressID makes an id for the `progress:<id>` events of one long operation. */
export function newProgressID(prefix = 'ui'): string {
  seq++;
  return `${prefix}-${Date.now().toString(36)}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The methods that open a subscription and return its event name. */
type SubscribeMethod = Extract<keyof Methods, `${string}.Subscribe${string}`>;

interface SubRecord {
  method: SubscribeMethod;
  params: unknown[];
  handler: (d: unknown) => void;
  onEnd?: (e: StreamEnd) => void;
  name: string;
  offs: (() => void)[];
  closed: boolean;
}

type HostWindow = {
  runtime?: {
    BrowserOpenURL?(url: string): void;
    WindowSetTitle?(t: string): void;
  };
};

export class Api {
  readonly t: Transport;
  private subs = new Set<SubRecord>();

  constructor(t: Transport) {
    this.t = t;
    t.onState((s, reconnected) => {
      if (s === 'open' && reconnected) void this.resubscribe();
    });
  }

  get kind() { return this.t.kind; }

  /** call calls a service method; its name, parameters and result are typed by the Go method (api.gen.ts). */
  call<M extends keyof Methods>(method: M, ...params: Parameters<Methods[M]>): ReturnType<Methods[M]> {
    return this.t.call(method, params) as ReturnType<Methods[M]>;
  }

  onState(cb: (s: ConnState) => void) { return this.t.onState((s) => cb(s)); }

  /** on listens to a raw event name (sessions and progress use fixed names). */
  on(event: string, cb: (d: unknown) => void) { return this.t.on(event, cb); }

  // ---- services (docs/contracts.md, "app/ services") ----
  readonly containers = {
    list: (all: boolean) => this.call('Containers.List', all).then((r) => r ?? []),
    inspect: (id: string) => this.call('Containers.Inspect', id),
    create: (r: RunInput) => this.call('Containers.Create', fillRun(r)),
    run: (r: RunInput) => this.call('Containers.Run', fillRun(r)),
    start: (id: string) => this.call('Containers.Start', id),
    stop: (id: string, timeoutSec = -1) => this.call('Containers.Stop', id, timeoutSec),
    restart: (id: string, timeoutSec = -1) => this.call('Containers.Restart', id, timeoutSec),
    kill: (id: string, signal = 'SIGKILL') => this.call('Containers.Kill', id, signal),
    pause: (id: string) => this.call('Containers.Pause', id),
    resume: (id: string) => this.call('Containers.Resume', id),
    remove: (id: string, force: boolean) => this.call('Containers.Remove', id, force),
    logs: (id: string, q: LogQueryInput) => this.call('Containers.Logs', id, fillLogQuery(q)).then((r) => r ?? []),
    stats: (id: string) => this.call('Containers.Stats', id),
    execStart: (id: string, r: ExecInput) => this.call('Containers.ExecStart', id, fillExec(r)),
    attachStart: (id: string) => this.call('Containers.AttachStart', id),
    sessionInput: (sid: string, dataBase64: string) => this.call('Containers.SessionInput', sid, dataBase64),
    sessionCloseInput: (sid: string) => this.call('Containers.SessionCloseInput', sid),
    sessionResize: (sid: string, rows: number, cols: number) => this.call('Containers.SessionResize', sid, rows, cols),
    addMount: (id: string, hostPath: string, containerPath: string, readOnly: boolean) =>
      this.call('Containers.AddMount', id, hostPath, containerPath, readOnly),
    removeMount: (id: string, containerPath: string) => this.call('Containers.RemoveMount', id, containerPath),
    mountPlan: (id: string) => this.call('Containers.MountPlan', id),
    unsubscribe: (name: string) => this.call('Containers.Unsubscribe', name),
  };

  readonly images = {
    list: () => this.call('Images.List').then((r) => r ?? []),
    inspect: (ref: string) => this.call('Images.Inspect', ref),
    pull: (ref: string, platform: string, progressID: string) => this.call('Images.Pull', ref, platform, progressID),
    remove: (ref: string, force: boolean) => this.call('Images.Remove', ref, force),
    load: (path: string) => this.call('Images.Load', path).then((r) => r ?? []),
    save: (refs: string[], path: string, format: string) => this.call('Images.Save', refs, path, format),
    prune: () => this.call('Images.Prune'),
  };

  readonly volumes = {
    list: () => this.call('Volumes.List').then((r) => r ?? []),
    inspect: (name: string) => this.call('Volumes.Inspect', name),
    create: (name: string, labels: string[], opts: string[] = []) => this.call('Volumes.Create', name, labels, opts),
    remove: (name: string, force: boolean) => this.call('Volumes.Remove', name, force),
    prune: (all: boolean) => this.call('Volumes.Prune', all),
  };

  readonly settings = {
    get: () => this.call('Settings.Get'),
    set: (u: SettingsUpdate) => this.call('Settings.Set', u),
    registryLogin: (registry: string, username: string, password: string) => this.call('Settings.RegistryLogin', registry, username, password),
    registryLogout: (registry: string) => this.call('Settings.RegistryLogout', registry),
  };

  readonly system = {
    info: () => this.call('System.Info'),
    version: () => this.call('System.Version'),
    diskUsage: () => this.call('System.DiskUsage'),
    prune: () => this.call('System.Prune'),
  };

  // ---- subscriptions ----
  private async subscribe<M extends SubscribeMethod>(method: M, params: Parameters<Methods[M]>, handler: (d: unknown) => void,
    onEnd?: (e: StreamEnd) => void): Promise<Subscription> {
    const rec: SubRecord = { method, params, handler, onEnd, name: '', offs: [], closed: false };
    await this.bind(rec);
    this.subs.add(rec);
    const api = this;
    return {
      get name() { return rec.name; },
      close() {
        if (rec.closed) return;
        rec.closed = true;
        api.subs.delete(rec);
        for (const off of rec.offs) off();
        rec.offs = [];
        if (rec.name) api.containers.unsubscribe(rec.name).catch(() => {});
      },
    };
  }

  private async bind(rec: SubRecord) {
    const name: unknown = await this.t.call(rec.method, rec.params);
    if (typeof name !== 'string' || !name) throw new ApiError('internal', `${rec.method} returned no event name`);
    rec.name = name;
    rec.offs.push(this.t.on(name, (d) => { if (!rec.closed) rec.handler(d); }));
    rec.offs.push(this.t.on(`${name}:end`, (d) => {
      if (rec.closed) return;
      rec.closed = true;
      this.subs.delete(rec);
      for (const off of rec.offs) off();
      rec.onEnd?.((d ?? {}) as StreamEnd);
    }));
    // Wails: events are held until we say we listen (the bridge releases them by itself).
    if (this.kind === 'wails') this.call('Containers.Ready', name).catch(() => {});
  }

  private async resubscribe() {
    for (const rec of [...this.subs]) {
      for (const off of rec.offs) off();
      rec.offs = [];
      try {
        await this.bind(rec);
      } catch (e) {
        rec.closed = true;
        this.subs.delete(rec);
        rec.onEnd?.({ error: toApiError(e).message });
      }
    }
  }

  // Handlers take the payloads app.EventPayloads declares (api.gen.ts); asArray also accepts a batch
  // where one value is declared and one value where a batch is.
  subscribeLogs(id: string, q: LogQueryInput, onLines: (l: LogLine[]) => void, onEnd?: (e: StreamEnd) => void) {
    return this.subscribe('Containers.SubscribeLogs', [id, fillLogQuery(q)],
      (d) => onLines(asArray<EventPayloads['logs'][number]>(d)), onEnd);
  }
  subscribeConsole(id: string, onData: (text: string) => void, onEnd?: (e: StreamEnd) => void) {
    return this.subscribe('Containers.SubscribeConsole', [id], (d) => {
      for (const x of asArray<EventPayloads['console']>(d)) if (typeof x === 'string') onData(x);
    }, onEnd);
  }
  subscribeStats(id: string, onStats: (s: Stats) => void, onEnd?: (e: StreamEnd) => void) {
    return this.subscribe('Containers.SubscribeStats', [id],
      (d) => { for (const s of asArray<EventPayloads['stats']>(d)) onStats(s); }, onEnd);
  }
  subscribeEvents(onEvent: (e: EngineEvent) => void, onEnd?: (e: StreamEnd) => void) {
    return this.subscribe('System.SubscribeEvents', [],
      (d) => { for (const e of asArray<EventPayloads['events'][number]>(d)) onEvent(e); }, onEnd);
  }

  /** onProgress listens to `progress:<id>`; register before starting the operation. */
  onProgress(progressID: string, cb: (p: Progress) => void) {
    return this.t.on(`progress:${progressID}`, (d) => { for (const p of asArray<EventPayloads['progress']>(d)) cb(p); });
  }

  /** session wires an exec/attach session: output and exit events, input and resize. */
  session(sid: string, onOutput: (o: SessionOutput) => void, onExit: (e: SessionExit) => void) {
    const offOut = this.t.on(`session:${sid}`, (d) => { for (const o of asArray<EventPayloads['session']>(d)) onOutput(o); });
    let exited = false;
    const offExit = this.t.on(`session-exit:${sid}`, (d) => { exited = true; onExit((d ?? { code: -1 }) as EventPayloads['session-exit']); });
    if (this.kind === 'wails') this.call('Containers.Ready', sid).catch(() => {});
    // Keystrokes must arrive in order, but the services may handle calls concurrently: one
    // SessionInput in flight at a time, with what is typed meanwhile sent together after it.
    let inflight: Promise<void> | null = null;
    let queued: Uint8Array[] = [];
    let waiters: { resolve(): void; reject(e: unknown): void }[] = [];
    const pump = () => {
      if (inflight || !queued.length) return;
      const total = queued.reduce((n, b) => n + b.length, 0);
      const buf = new Uint8Array(total);
      let off = 0;
      for (const b of queued) { buf.set(b, off); off += b.length; }
      const ws = waiters;
      queued = [];
      waiters = [];
      inflight = this.containers.sessionInput(sid, toBase64(buf)).then(
        () => { for (const w of ws) w.resolve(); },
        (e) => { for (const w of ws) w.reject(e); },
      ).finally(() => { inflight = null; pump(); });
    };
    const input = (data: string | Uint8Array) => new Promise<void>((resolve, reject) => {
      queued.push(typeof data === 'string' ? new TextEncoder().encode(data) : data);
      waiters.push({ resolve, reject });
      pump();
    });
    return {
      input,
      closeInput: () => this.containers.sessionCloseInput(sid),
      resize: (rows: number, cols: number) => this.containers.sessionResize(sid, rows, cols),
      /** dispose stops listening and, if the process still runs, ends the session. */
      dispose: () => {
        offOut(); offExit();
        if (!exited) this.containers.unsubscribe(sid).catch(() => {});
      },
    };
  }

  // ---- host integration (desktop window vs browser) ----
  private get host(): HostWindow { return (typeof window === 'undefined' ? {} : window) as unknown as HostWindow; }

  openURL(url: string) {
    const rt = this.host.runtime;
    if (this.kind === 'wails' && rt?.BrowserOpenURL) rt.BrowserOpenURL(url);
    else window.open(url, '_blank', 'noopener');
  }

  setTitle(title: string) {
    document.title = title;
    const rt = this.host.runtime;
    if (this.kind === 'wails' && rt?.WindowSetTitle) rt.WindowSetTitle(title);
  }

  /** canDropHostPaths: dropped folders arrive with their host paths (desktop app only). */
  get canDropHostPaths() { return this.kind === 'wails'; }

  /**
   * onFileDrop reports folders dropped on the desktop window with their host paths and the element
   * under the drop point. The Go side re-emits Wails' native drop as the `filedrop` event
   * ({x, y, paths}); the page itself must not navigate to a dropped file.
   */
  onFileDrop(cb: (paths: string[], target: Element | null) => void): () => void {
    if (this.kind !== 'wails') return () => {};
    const stop = (e: DragEvent) => { if (e.dataTransfer?.types.includes('Files')) e.preventDefault(); };
    window.addEventListener('dragover', stop);
    window.addEventListener('drop', stop);
    const off = this.t.on('filedrop', (d) => {
      const o = (d ?? {}) as { x?: number; y?: number; paths?: string[] };
      const target = typeof o.x === 'number' && typeof o.y === 'number' ? (document.elementFromPoint?.(o.x, o.y) ?? null) : null;
      cb(o.paths ?? [], target);
    });
    return () => {
      off();
      window.removeEventListener('dragover', stop);
      window.removeEventListener('drop', stop);
    };
  }

  /** chooseFile opens the desktop file dialog (System.OpenFileDialog, which the desktop app serves). */
  get canChooseFile() { return this.kind === 'wails'; }
  chooseFile(title: string, pattern: string) {
    return this.call('System.OpenFileDialog', title, pattern);
  }

  /** openLogsWindow opens a logs-only window: System.OpenLogsWindow in the desktop app, else a
   * browser window on #/logs/<id>. */
  openLogsWindow(id: string) {
    if (this.kind === 'wails') {
      return this.call('System.OpenLogsWindow', id);
    }
    window.open(this.logsWindowURL(id), `logs-${id.slice(0, 12)}`, 'popup,width=900,height=600');
    return Promise.resolve();
  }

  /** logsWindowURL is where "open logs in a new window" points. */
  logsWindowURL(id: string) {
    const u = new URL(window.location.href);
    u.hash = `#/logs/${encodeURIComponent(id)}`;
    return u.toString();
  }

  close() {
    for (const rec of this.subs) { rec.closed = true; for (const off of rec.offs) off(); }
    this.subs.clear();
    this.t.close();
  }
}

/** ExecInput is an ExecRequest with only what the caller sets. */
export type ExecInput = Partial<ExecRequest> & Pick<ExecRequest, 'Cmd'>;

// The fill functions send every field the Go type has: adding one in Go breaks this build until it
// is given its default here.
function fillRun(r: RunInput): RunRequest {
  return {
    Name: '', Entrypoint: null, Cmd: [], Env: [], EnvFiles: [], Ports: [], Volumes: [],
    Workdir: '', User: '', Hostname: '', CPUs: '', Memory: '', StorageOpt: [], Restart: '', Platform: '', Pull: '',
    Labels: [], TTY: false, Interactive: false, AutoRemove: false, ProgressID: '', Network: '', NetworkAliases: [],
    HealthCmd: '', HealthInterval: '', HealthTimeout: '', HealthStartPeriod: '', HealthStartInterval: '', HealthRetries: 0, NoHealthcheck: false, ...r,
  };
}

function fillLogQuery(q: LogQueryInput): LogQuery {
  return { Tail: 0, Since: '', Until: '', Timestamps: true, Stdout: false, Stderr: false, Follow: false, ...q };
}

function fillExec(r: ExecInput): ExecRequest {
  return { Env: [], User: '', Workdir: '', TTY: false, Interactive: false, Rows: 0, Cols: 0, ...r };
}

export function toBase64(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function fromBase64Text(b64: string): string {
  try { return new TextDecoder().decode(fromBase64(b64)); } catch { return b64; }
}

/** wsURL builds the bridge URL from the page's location. `skiff serve` turns the printed URL's ?token= into
 * an HttpOnly cookie and redirects to the URL without it, so the page normally has none and the
 * WebSocket is authorised by that cookie; a ?token= still in the URL (another server) is passed on. */
export function wsURL(loc: Location = window.location): string {
  const token = new URLSearchParams(loc.search).get('token') ?? '';
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/api/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

/** createApi picks the transport: Wails bindings when present, else the WebSocket bridge. */
export function createApi(opts: WsOptions = {}): Api {
  if (WailsTransport.available()) return new Api(new WailsTransport());
  return new Api(new WsTransport(wsURL(), opts));
}
