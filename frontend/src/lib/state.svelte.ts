// Shared UI state: the container, image and volume lists (kept fresh by engine events), per-container stats
// history for the sparklines, and the activity list (errors and long operations shown to the user).

import { Api, toApiError, type Subscription } from './api';
import type { AppSettings, Container, Image, Stats, Volume } from './types';
import { explain } from './errors';

export interface Activity {
  id: number;
  kind: 'error' | 'progress' | 'info';
  title: string;
  detail?: string;
  /** the engine's own message, behind "Details", when detail puts it in plain words */
  raw?: string;
  progress?: number;     // 0..1, or undefined when indeterminate
  done?: boolean;
}

export const HISTORY = 900; // samples kept per container: the stats charts' longest window (15 min at 1/s)
export const SPARK = 60; // the newest samples a list sparkline shows

export class AppState {
  readonly api: Api;
  containers = $state<Container[]>([]);
  images = $state<Image[]>([]);
  loaded = $state(false);
  imagesLoaded = $state(false);
  volumes = $state<Volume[]>([]);
  /** volumesLoaded: the volumes were listed once (the Volumes view asks first; after that events keep them fresh). */
  volumesLoaded = $state(false);
  conn = $state<'connecting' | 'open' | 'closed'>('connecting');
  /** down: the engine cannot be reached (from a failed connection until one opens again). While down
   * the lists show what was last known, greyed, states are unknown, and actions are disabled. */
  down = $state(false);
  activities = $state<Activity[]>([]);
  /** the settings, once a view has read them (the Run dialog shows their defaults). */
  settings = $state<AppSettings | null>(null);
  /** stats history by container ID (most recent last). */
  stats = $state<Record<string, Stats[]>>({});
  private statSubs = new Map<string, Subscription | 'pending'>();
  private events: Subscription | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private nextActivity = 1;
  private disposed = false;

  constructor(api: Api) {
    this.api = api;
  }

  async start() {
    this.api.onState((s) => {
      this.conn = s;
      if (s === 'closed') this.down = true;
      if (s === 'open') {
        const back = this.down;
        this.down = false;
        if (!this.events) void this.followEvents();
        this.scheduleRefresh(0);
        if (back) void this.refreshImages();
        if (back && this.volumesLoaded) void this.refreshVolumes();
      }
    });
    await this.followEvents();
    // A slow poll as well: uptimes and states stay right even if an event is missed.
    const poll = setInterval(() => { if (!this.disposed) this.scheduleRefresh(0); }, 5000);
    this.stopPoll = () => clearInterval(poll);
    await Promise.all([this.refresh(), this.refreshImages()]);
  }
  private stopPoll = () => {};

  private following = false;
  private async followEvents() {
    if (this.following || this.events || this.disposed) return;
    this.following = true;
    try {
      this.events = await this.api.subscribeEvents((e) => {
        if (e.Type === 'image') this.refreshImages();
        // A volume's users change with its containers' create and destroy.
        if ((e.Type === 'volume' || e.Type === 'container') && this.volumesLoaded) this.scheduleVolumes();
        this.scheduleRefresh(e.Type === 'container' ? 50 : 200);
      }, () => { this.events = null; });
    } catch (e) {
      // Unreachable engine: the banner says so, and the subscription is made when it comes back.
      if (toApiError(e).code !== 'unavailable') this.error('Cannot follow engine events', e);
    } finally {
      this.following = false;
    }
  }

  scheduleRefresh(ms: number) {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => { this.refreshTimer = null; void this.refresh(); }, ms);
  }

  async refresh() {
    try {
      const list = await this.api.containers.list(true);
      list.sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
      this.containers = list;
      this.loaded = true;
      this.syncStats();
    } catch (e) {
      if (toApiError(e).code !== 'unavailable') this.error('Cannot list containers', e);
    }
  }

  async refreshImages() {
    try {
      this.images = await this.api.images.list();
      this.imagesLoaded = true;
    } catch (e) {
      if (toApiError(e).code !== 'unavailable') this.error('Cannot list images', e);
    }
  }

  async refreshVolumes() {
    try {
      this.volumes = await this.api.volumes.list();
      this.volumesLoaded = true;
    } catch (e) {
      if (toApiError(e).code !== 'unavailable' || !this.down) this.error('Cannot list volumes', e);
    }
  }
  private volumeTimer: ReturnType<typeof setTimeout> | null = null;
  private scheduleVolumes() {
    if (this.volumeTimer) return;
    this.volumeTimer = setTimeout(() => { this.volumeTimer = null; void this.refreshVolumes(); }, 200);
  }

  /** syncStats keeps one stats subscription per running container. */
  private syncStats() {
    const running = new Set(this.containers.filter((c) => c.State === 'running').map((c) => c.ID));
    for (const [id, sub] of this.statSubs) {
      if (!running.has(id)) {
        if (sub !== 'pending') sub.close();
        this.statSubs.delete(id);
      }
    }
    for (const id of running) {
      if (this.statSubs.has(id)) continue;
      this.statSubs.set(id, 'pending');
      this.api.subscribeStats(id, (s) => this.pushStats(id, s), () => this.statSubs.delete(id))
        .then((sub) => {
          if (this.statSubs.get(id) === 'pending' && !this.disposed) this.statSubs.set(id, sub);
          else sub.close();
        })
        .catch(() => this.statSubs.delete(id));
    }
  }

  pushStats(id: string, s: Stats) {
    const h = this.stats[id] ?? [];
    const next = h.length >= HISTORY ? h.slice(h.length - HISTORY + 1) : h.slice();
    next.push(s);
    this.stats[id] = next;
  }

  /** stateOf is the state to show: 'unknown' while the engine cannot be reached. */
  stateOf(c: Container): string {
    return this.down ? 'unknown' : c.State;
  }

  find(idOrName: string): Container | undefined {
    return this.containers.find((c) => c.ID === idOrName || c.Name === idOrName || c.ID.startsWith(idOrName));
  }

  // ---- activities ----
  begin(title: string, detail?: string): Activity {
    const a: Activity = { id: this.nextActivity++, kind: 'progress', title, detail };
    this.activities = [...this.activities, a];
    return this.activities[this.activities.length - 1];
  }
  update(a: Activity, patch: Partial<Activity>) {
    this.activities = this.activities.map((x) => (x.id === a.id ? { ...x, ...patch } : x));
  }
  end(a: Activity) {
    this.activities = this.activities.filter((x) => x.id !== a.id);
  }
  error(title: string, e: unknown) {
    const err = toApiError(e);
    const x = explain(err);
    const a: Activity = { id: this.nextActivity++, kind: 'error', title, detail: x.text, raw: x.detail || undefined };
    this.activities = [...this.activities, a];
    setTimeout(() => this.dismiss(a.id), 12000);
  }
  /** refuse says why an action was not done (a warning that stays as long as an error). */
  refuse(title: string, detail: string) {
    const a: Activity = { id: this.nextActivity++, kind: 'error', title, detail };
    this.activities = [...this.activities, a];
    setTimeout(() => this.dismiss(a.id), 12000);
  }
  info(title: string, detail?: string) {
    const a: Activity = { id: this.nextActivity++, kind: 'info', title, detail };
    this.activities = [...this.activities, a];
    setTimeout(() => this.dismiss(a.id), 5000);
  }
  dismiss(id: number) {
    this.activities = this.activities.filter((x) => x.id !== id);
  }

  /** run wraps a user action: shows it while it runs (detail: what it waits for) and any error after. */
  async run<T>(title: string, f: () => Promise<T>, detail?: string): Promise<T | undefined> {
    const a = this.begin(title, detail);
    try {
      const r = await f();
      return r;
    } catch (e) {
      this.error(`${title} failed`, e);
      return undefined;
    } finally {
      this.end(a);
      this.scheduleRefresh(0);
    }
  }

  // ---- folder drops (host paths from the desktop window) ----
  private dropHandlers: ((paths: string[], target: Element | null) => boolean)[] = [];
  /** onDrop registers a handler; the newest handler that returns true consumes the drop. */
  onDrop(h: (paths: string[], target: Element | null) => boolean): () => void {
    this.dropHandlers.push(h);
    return () => { this.dropHandlers = this.dropHandlers.filter((x) => x !== h); };
  }
  dispatchDrop(paths: string[], target: Element | null) {
    for (let i = this.dropHandlers.length - 1; i >= 0; i--) if (this.dropHandlers[i](paths, target)) return;
  }

  dispose() {
    this.disposed = true;
    this.stopPoll();
    if (this.volumeTimer) clearTimeout(this.volumeTimer);
    this.events?.close();
    for (const s of this.statSubs.values()) if (s !== 'pending') s.close();
    this.statSubs.clear();
  }
}
