// A small in-memory server speaking the bridge wire protocol (docs/contracts.md), for developing the UI
// without the Go side and for the api module's transport test. It is not Skiff: no VMs, canned data.
// Its methods are a subset of the generated method table (src/lib/api.gen.ts, from the Go services):
// it refuses to start with a method the Go side does not serve, and answers a served method it does not
// fake with `unavailable`, an unknown one with `not_found` as the Go dispatcher does.
//
//   node tests/fake-bridge.mjs [port]     # serves dist/ and /api/ws?token=dev
//   import { startFakeBridge } from './fake-bridge.mjs'; const b = await startFakeBridge({ token: 't' });

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

// Through require, so that test runners resolving 'browser' conditions still get the Node build.
const { WebSocketServer } = createRequire(import.meta.url)('ws');

const here = path.dirname(fileURLToPath(import.meta.url));
const now = () => new Date().toISOString();
const b64 = (s) => Buffer.from(s).toString('base64');

class BridgeError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/** servedMethods lists the methods of the generated table (api.gen.ts), i.e. what the Go bridge serves. */
export function servedMethods() {
  const src = fs.readFileSync(path.join(here, '..', 'src', 'lib', 'api.gen.ts'), 'utf8');
  const table = /export interface Methods \{\n([\s\S]*?)\n\}/.exec(src);
  if (!table) throw new Error('api.gen.ts has no Methods table');
  return [...table[1].matchAll(/^ {2}"([A-Za-z]+\.[A-Za-z]+)": \(/gm)].map((m) => m[1]);
}

/** unservedMethods lists the fake's methods that the Go bridge does not serve (none, or it is stale). */
export function unservedMethods() {
  const served = new Set(servedMethods());
  return Object.keys(methodTable({ state: makeState(), emit() {}, sub() {}, sessions: new Map() })).filter((m) => !served.has(m));
}

function makeState() {
  const images = [{
    ID: 'sha256:' + 'a1'.repeat(32), Digest: 'sha256:' + 'b2'.repeat(32),
    RepoTags: ['docker.io/library/busybox:latest'], RepoDigests: [], Platform: 'linux/amd64',
    Created: '2024-05-01T10:00:00Z', Size: 2_180_000,
    Config: { Entrypoint: null, Cmd: ['sh'], Env: ['PATH=/usr/bin:/bin'], WorkingDir: '', User: '', StopSignal: '',
      ExposedPorts: null, Volumes: null, Labels: null },
  }];
  const volumes = new Map([['data', { Name: 'data', Driver: 'local', Labels: { app: 'web' }, Created: '2026-01-02T10:00:00Z', Anonymous: false,
    Mountpoint: '/fake/volumes/data/_data', UsedBy: [], Size: -1, bytes: 12_345_678 }]]);
  return { images, volumes, containers: new Map(), n: 0, sent: new Set(), received: /** @type {{ method: string, params: unknown[] }[]} */ ([]) };
}

function container(state, req) {
  const id = (Date.now().toString(16) + (++state.n).toString(16)).padEnd(64, 'c').slice(0, 64);
  const ports = (req.Ports ?? []).map((p) => {
    const m = /^(?:([\d.]+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(p);
    if (!m) throw new BridgeError('invalid', `invalid port mapping "${p}": want [ip:]host:container[/proto]`);
    return { HostIP: m[1] ?? '127.0.0.1', HostPort: +m[2], ContainerPort: +m[3], Proto: m[4] ?? 'tcp' };
  });
  const named = []; // volumes to make or use once the request is known to be good
  const mounts = (req.Volumes ?? []).map((v) => {
    const [Source, Target, ro] = v.split(':');
    if (/^[A-Za-z0-9][\w.-]*$/.test(Source ?? '') && Target?.startsWith('/')) { // a named volume, made when missing
      named.push(Source);
      return { Type: 'volume', Name: Source, Source: `/fake/volumes/${Source}/_data`, Target, ReadOnly: ro === 'ro' };
    }
    if (!Source?.startsWith('/') || !Target?.startsWith('/')) throw new BridgeError('invalid', `invalid volume "${v}": want /host:/container[:ro] or name:/container[:ro]`);
    return { Source, Target, ReadOnly: ro === 'ro' };
  });
  if (!req.Image) throw new BridgeError('invalid', 'image: an image is required');
  const name = req.Name || `fake_${state.n}`;
  for (const c of state.containers.values()) if (c.Name === name) throw new BridgeError('conflict', `name "${name}" is already in use`);
  for (const n of named) { const v = state.volumes.get(n) ?? makeVolume(state, n, {}); v.UsedBy = [...v.UsedBy, id]; }
  return {
    ID: id, Name: name, Image: req.Image, ImageID: state.images[0].ID, State: 'created',
    Command: [...(req.Cmd ?? [])], Config: { Cmd: req.Cmd ?? [], Env: req.Env ?? [], CPUs: +(req.CPUs || 1),
      MemoryMiB: 512, Restart: { Name: req.Restart || 'no', MaxRetries: 0 }, TTY: false },
    Created: now(), StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z',
    ExitCode: 0, RestartCount: 0, Ports: ports, Mounts: mounts, Error: '',
  };
}

function makeVolume(state, name, labels) {
  if (name && !/^[A-Za-z0-9][\w.-]*$/.test(name)) throw new BridgeError('invalid', `invalid volume name "${name}": want letters, digits and _.-`);
  const Name = name || Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
  const v = { Name, Driver: 'local', Labels: labels, Created: now(), Anonymous: false, Mountpoint: `/fake/volumes/${Name}/_data`, UsedBy: [], Size: -1, bytes: 0 };
  state.volumes.set(Name, v);
  return v;
}
const volumeOut = ({ bytes, ...v }, withSize) => ({ ...v, Size: withSize ? bytes : -1 });

/** startFakeBridge listens on 127.0.0.1 (port 0 = any) and resolves to { url, port, token, close }. */
export async function startFakeBridge({ port = 0, token = 'dev', staticDir = path.join(here, '..', 'dist'), linesPerTick = 3, tickMs = 100, chunk = 1000 } = {}) {
  const stale = unservedMethods();
  if (stale.length) throw new Error(`fake-bridge fakes methods the Go services do not serve: ${stale.join(', ')} (see src/lib/api.gen.ts)`);
  const state = makeState();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    let p = path.normalize(decodeURIComponent(u.pathname)).replace(/^(\.\.[/\\])+/, '');
    if (p === '/') p = '/index.html';
    const f = path.join(staticDir, p);
    if (!f.startsWith(staticDir) || !fs.existsSync(f) || fs.statSync(f).isDirectory()) { res.writeHead(404); res.end('not found'); return; }
    const ext = path.extname(f);
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
    res.writeHead(200, { 'content-type': types[ext] ?? 'application/octet-stream' });
    fs.createReadStream(f).pipe(res);
  });
  const wss = new WebSocketServer({ noServer: true });
  let down = false;
  let stall = false;
  const held = new Set(); // upgrade requests left unanswered while stalled
  server.on('upgrade', (req, sock, head) => {
    const u = new URL(req.url, 'http://x');
    if (down && stall) { held.add(sock); return; }
    if (down) { // as `skiff serve`'s proxy answers while the engine behind it is not running
      sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    if (u.pathname !== '/api/ws' || u.searchParams.get('token') !== token) {
      sock.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => serveConn(ws, state, { linesPerTick, tickMs, chunk }));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: addr.port, token, url: `http://127.0.0.1:${addr.port}/?token=${token}`,
    wsURL: `ws://127.0.0.1:${addr.port}/api/ws?token=${token}`, state,
    /** dropAll closes every client connection (to test reconnects). */
    dropAll() { for (const c of wss.clients) c.terminate(); },
    /** down drops every connection and refuses new ones (or, stalled, leaves them unanswered) until up(): the engine stopped. */
    down({ stalled = false } = {}) { down = true; stall = stalled; for (const c of wss.clients) c.terminate(); },
    /** up accepts connections again; upgrades held while stalled are cut. */
    up() { down = false; stall = false; for (const s of held) s.destroy(); held.clear(); },
    close: () => new Promise((r) => { for (const s of held) s.destroy(); for (const c of wss.clients) c.terminate(); server.close(() => r()); }),
  };
}

function serveConn(ws, state, opts) {
  const subs = new Map(); // name -> stop()
  const emit = (event, data) => {
    if (ws.readyState !== 1) return;
    ws.send(JSON.stringify({ event, data }));
    state.sent.add(event); // for tests: which event names have gone out
  };
  const sub = (prefix, start) => { const name = `${prefix}:${++state.n}`; setTimeout(() => subs.set(name, start(name)), 0); return name; };
  const sessions = new Map();
  const methods = methodTable({ state, emit, sub, subs, sessions, ...opts });
  const served = new Set(servedMethods());
  ws.on('message', async (raw) => {
    let m;
    try { m = JSON.parse(String(raw)); } catch { return; }
    state.received.push({ method: m.method, params: m.params ?? [] });
    const f = methods[m.method];
    try {
      if (!served.has(m.method)) throw new BridgeError('not_found', `unknown method "${m.method}"`);
      if (!f) throw new BridgeError('unavailable', `the fake bridge does not implement ${m.method}`);
      const result = await f(...(m.params ?? []));
      ws.send(JSON.stringify({ id: m.id, result: result ?? null }));
    } catch (e) {
      ws.send(JSON.stringify({ id: m.id, error: { code: e.code ?? 'internal', message: e.message } }));
    }
  });
  ws.on('close', () => { for (const stop of subs.values()) stop(); subs.clear(); });
}

/** methodTable is the fake's implementation of the methods it fakes, by request name. */
function methodTable({ state, emit, sub, subs = new Map(), sessions, linesPerTick = 3, tickMs = 100, chunk = 1000 }) {
  // Names are unique across connections, as the real server's are.
  const next = () => ++state.n;
  const get = (id) => {
    for (const c of state.containers.values()) if (c.ID === id || c.ID.startsWith(id) || c.Name === id) return c;
    throw new BridgeError('not_found', `no such container: ${id}`);
  };
  const vol = (name) => {
    const v = state.volumes.get(name);
    if (!v) throw new BridgeError('not_found', `no such volume: "${name}"`);
    return v;
  };
  const setState = (c, s) => {
    c.State = s;
    if (s === 'running') c.StartedAt = now();
    if (s === 'exited') c.FinishedAt = now();
    for (const [name, stop] of subs) if (name.startsWith('events:')) stop.push?.({ Time: now(), Type: 'container', Action: s === 'running' ? 'start' : s === 'exited' ? 'die' : s, ID: c.ID, Name: c.Name, Attributes: {} });
  };
  const methods = {
    'Containers.List': (all) => [...state.containers.values()].filter((c) => all || c.State === 'running'),
    'Containers.Inspect': (id) => get(id),
    'Containers.Create': (req) => { const c = container(state, req); state.containers.set(c.ID, c); return c; },
    'Containers.Run': async (req) => {
      const c = container(state, req);
      if (req.ProgressID) {
        for (const [d, s] of [[0, 'waiting'], [50, 'downloading'], [100, 'done']]) {
          emit(`progress:${req.ProgressID}`, [{ phase: 'pull', layer: 'sha256:' + 'd4'.repeat(32), done: d, total: 100, status: s }]);
          await new Promise((r) => setTimeout(r, 30));
        }
        emit(`progress:${req.ProgressID}`, [{ phase: 'disk', layer: 'sha256:' + 'e5'.repeat(32), done: 1, total: 1, status: 'disk ready' }]);
      }
      state.containers.set(c.ID, c); setState(c, 'running'); return c;
    },
    'Containers.Start': (id) => { setState(get(id), 'running'); },
    'Containers.Stop': (id) => { setState(get(id), 'exited'); },
    'Containers.Restart': (id) => { const c = get(id); c.RestartCount++; setState(c, 'running'); },
    'Containers.Kill': (id) => { const c = get(id); c.ExitCode = 137; setState(c, 'exited'); },
    'Containers.Pause': (id) => { setState(get(id), 'paused'); },
    'Containers.Resume': (id) => { setState(get(id), 'running'); },
    'Containers.Remove': (id, force) => {
      const c = get(id);
      if (c.State === 'running' && !force) throw new BridgeError('conflict', `container ${c.Name} is running: stop it or force removal`);
      state.containers.delete(c.ID);
      for (const v of state.volumes.values()) v.UsedBy = v.UsedBy.filter((x) => x !== c.ID);
      setState(c, 'destroy');
    },
    'Containers.Logs': (id) => { get(id); return [{ Time: now(), Stream: 'stdout', Data: 'hello from fake\n' }]; },
    'Containers.AddMount': (id, host, ctr, ro) => { const c = get(id); c.Mounts = [...(c.Mounts ?? []), { Source: host, Target: ctr, ReadOnly: ro }]; return c; },
    'Containers.SubscribeLogs': (id) => {
      const c = get(id);
      return sub('logs', (name) => {
        let i = 0;
        const t = setInterval(() => {
          if (c.State !== 'running') return;
          // Batches of at most `chunk` lines, as the real bridge caps an event at 64 KiB.
          for (let left = linesPerTick; left > 0; left -= chunk) {
            const batch = [];
            for (let k = 0; k < Math.min(chunk, left); k++, i++) {
              batch.push({ Time: now(), Stream: i % 5 === 4 ? 'stderr' : 'stdout', Data: `line ${i} \u001b[32mgreen\u001b[0m text lorem ipsum dolor sit amet, consectetur adipiscing elit\n` });
            }
            emit(name, batch);
          }
        }, tickMs);
        return () => clearInterval(t);
      });
    },
    'Containers.SubscribeStats': (id) => {
      get(id);
      return sub('stats', (name) => {
        let i = 0;
        const t = setInterval(() => emit(name, { Time: now(), CPUPercent: 20 + 15 * Math.sin(i++ / 3), MemoryUsage: (60 + (i % 7)) * 2 ** 20, MemoryLimit: 512 * 2 ** 20, NetRx: i * 1000, NetTx: i * 500, BlockRead: 0, BlockWrite: 0, PIDs: 3, HostMemory: (140 + (i % 5)) * 2 ** 20 }), 500);
        return () => clearInterval(t);
      });
    },
    'Containers.SubscribeConsole': (id) => { get(id); return sub('console', (name) => { emit(name, '[    0.000000] Linux version 6.1.0 (fake)\nskiff-agent: ready\n'); return () => {}; }); },
    'System.SubscribeEvents': () => {
      const name = `events:${next()}`;
      const stop = () => {};
      stop.push = (e) => emit(name, [e]);
      subs.set(name, stop);
      return name;
    },
    'Containers.Unsubscribe': (name) => { subs.get(name)?.(); subs.delete(name); },
    'Containers.ExecStart': (id, req) => {
      get(id);
      const sid = `exec:${next()}`;
      setTimeout(() => emit(`session:${sid}`, [{ stream: 'stdout', data: b64(req.TTY ? '/ # ' : '') }]), 10);
      sessions.set(sid, { tty: req.TTY, line: '' });
      return sid;
    },
    'Containers.SessionInput': (sid, data) => {
      const s = sessions.get(sid);
      if (!s) throw new BridgeError('not_found', `no such session: ${sid}`);
      const text = Buffer.from(data, 'base64').toString();
      let out = s.tty ? text.replace(/\r/g, '\r\n') : '';
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') {
          const cmd = s.line.trim(); s.line = '';
          if (cmd === 'exit') { setTimeout(() => emit(`session-exit:${sid}`, { code: 0 }), 5); continue; }
          if (cmd.startsWith('echo ')) out += cmd.slice(5) + '\r\n';
          else if (cmd) out += `sh: ${cmd}: not found\r\n`;
          out += '/ # ';
        } else s.line += ch;
      }
      emit(`session:${sid}`, [{ stream: 'stdout', data: b64(out) }]);
    },
    'Containers.SessionResize': () => {},
    'Containers.SessionCloseInput': () => {},
    'Containers.Stats': (id) => { get(id); return { Time: now(), CPUPercent: 12.5, MemoryUsage: 64 * 2 ** 20, MemoryLimit: 512 * 2 ** 20, NetRx: 0, NetTx: 0, BlockRead: 0, BlockWrite: 0, PIDs: 2, HostMemory: 150 * 2 ** 20 }; },
    'Images.List': () => state.images,
    'Images.Inspect': (ref) => { const i = state.images.find((x) => x.ID === ref || x.RepoTags?.includes(ref)); if (!i) throw new BridgeError('not_found', `no such image: ${ref}`); return i; },
    'Images.Pull': async (ref, _platform, pid) => {
      if (ref.includes('missing')) throw new BridgeError('not_found', `pulling "${ref}": manifest unknown`);
      const layers = ['sha256:' + 'e5'.repeat(32), 'sha256:' + 'f6'.repeat(32)];
      for (let d = 0; d <= 100; d += 25) {
        for (const l of layers) emit(`progress:${pid}`, [{ phase: 'pull', layer: l, done: d * 1000, total: 100_000, status: d === 100 ? 'done' : 'downloading' }]);
        await new Promise((r) => setTimeout(r, 40));
      }
      const img = { ...state.images[0], ID: 'sha256:' + (state.images.length + 1).toString(16).repeat(64).slice(0, 64), RepoTags: [ref] };
      state.images.push(img);
      return img;
    },
    'Images.Remove': (ref) => { const i = state.images.findIndex((x) => x.ID === ref || x.RepoTags?.includes(ref)); if (i < 0) throw new BridgeError('not_found', `no such image: ${ref}`); state.images.splice(i, 1); },
    'Images.Load': (p) => { throw new BridgeError('not_found', `loading ${p}: no such file`); },
    'Volumes.List': () => [...state.volumes.values()].sort((a, b) => a.Name.localeCompare(b.Name)).map((v) => volumeOut(v, false)),
    'Volumes.Inspect': (name) => volumeOut(vol(name), true),
    'Volumes.Create': (name, labels) => {
      const l = {};
      for (const kv of labels ?? []) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new BridgeError('invalid', `invalid label "${kv}": want key=value`);
        l[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return volumeOut(state.volumes.get(name) ?? makeVolume(state, name, l), true);
    },
    'Volumes.Remove': (name, force) => {
      const v = state.volumes.get(name);
      if (!v) { if (force) return; throw new BridgeError('not_found', `no such volume: "${name}"`); }
      if (v.UsedBy.length) throw new BridgeError('conflict', `volume "${name}" is in use by container(s) [${v.UsedBy.map((x) => x.slice(0, 12)).join(', ')}]`);
      state.volumes.delete(name);
    },
    'Volumes.Prune': (all) => {
      const gone = [...state.volumes.values()].filter((v) => !v.UsedBy.length && (all || v.Anonymous));
      for (const v of gone) state.volumes.delete(v.Name);
      return { Removed: gone.map((v) => v.Name), Freed: gone.reduce((n, v) => n + v.bytes, 0) };
    },
    'System.Info': () => ({ Version: 'fake', OS: 'linux', Arch: 'amd64', Hypervisor: 'fake', Home: '/tmp', Kernel: '', Containers: state.containers.size, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: state.images.length, CPUs: 2, MemoryBytes: 4 * 2 ** 30 }),
    'System.Version': () => ({ Version: 'fake', Commit: '', GoVersion: '', OS: 'linux', Arch: 'amd64', API: 1 }),
  };
  return methods;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const b = await startFakeBridge({ port: +(process.argv[2] ?? 0) });
  console.log(b.url);
}
