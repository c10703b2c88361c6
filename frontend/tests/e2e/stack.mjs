// Starts the real stack for browser tests: cmd/skiff-testregistry and `skiff serve --http 127.0.0.1:0`
// with a temporary SKIFF_HOME. Every process is started in its own process group and killed on close.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** binaries returns { skiff, registry }, building what $SKIFF_BIN / $SKIFF_TESTREGISTRY_BIN do not name. */
export function binaries(dir) {
  const out = { skiff: process.env.SKIFF_BIN, registry: process.env.SKIFF_TESTREGISTRY_BIN };
  const build = (pkg, name) => {
    const p = path.join(dir, name);
    console.log(`e2e: go build -o ${p} ${pkg}`);
    execFileSync('go', ['build', '-o', p, pkg], { cwd: ROOT, stdio: 'inherit' });
    return p;
  };
  if (!out.skiff) out.skiff = build('.', 'skiff');
  if (!out.registry) out.registry = build('./cmd/skiff-testregistry', 'skiff-testregistry');
  return out;
}

/** firstLine spawns cmd and resolves with the first stdout line matching re (or rejects on exit/timeout). */
function startAndMatch(cmd, args, env, re, timeoutMs, logFile) {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', log], detached: true });
  const done = new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${path.basename(cmd)} printed nothing matching ${re} within ${timeoutMs} ms (see ${logFile})`)), timeoutMs);
    rl.on('line', (line) => {
      fs.appendFileSync(logFile, `[stdout] ${line}\n`);
      const m = re.exec(line);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${path.basename(cmd)} exited (${code ?? sig}) before it was ready; see ${logFile}`)); });
  });
  return { child, done };
}

function killGroup(child, sig) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, sig); } catch { /* gone */ }
}

async function stop(child, ms = 15000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGTERM');
  const t = setTimeout(() => killGroup(child, 'SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

/**
 * startStack starts the registry and the dashboard server. Returns
 * { url, token, registry, home, skiff, env, cli(args), close() }. With daemon, the engine is a
 * `skiff daemon` of its own, which `skiff serve` attaches to (and proxies), so that the engine can be
 * stopped and started again under a page that stays open: killEngine(), startEngine().
 */
export async function startStack({ keep = false, daemon = false } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-e2e-'));
  const home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  const bins = binaries(tmp);
  const env = { SKIFF_HOME: home };
  if (!process.env.SKIFF_KERNEL_DIR && fs.existsSync(path.join(ROOT, '_build/kernel'))) env.SKIFF_KERNEL_DIR = path.join(ROOT, '_build/kernel');
  const procs = [];
  const close = async () => {
    for (const p of procs.reverse()) await stop(p);
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const reg = startAndMatch(bins.registry, ['--addr', '127.0.0.1:0'], {}, /^(\S+:\d+)$/, 60000, path.join(tmp, 'registry.log'));
    procs.push(reg.child);
    const registry = (await reg.done)[1];
    const cli = (args) => execFileSync(bins.skiff, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
    let engine = null;
    const startEngine = async () => {
      const log = fs.openSync(path.join(tmp, 'daemon.log'), 'a');
      engine = spawn(bins.skiff, ['daemon'], { env: { ...process.env, ...env }, stdio: ['ignore', log, log], detached: true });
      procs.push(engine);
      const exited = new Promise((_, reject) => engine.once('exit', (c, sig) => reject(new Error(`skiff daemon exited (${c ?? sig}); see ${tmp}/daemon.log`))));
      exited.catch(() => {});
      const end = Date.now() + 60_000;
      for (;;) {
        try {
          execFileSync(bins.skiff, ['ps', '-a', '-q'], { env: { ...process.env, ...env }, stdio: 'pipe' });
          return;
        } catch { /* not yet */ }
        if (engine.exitCode !== null || engine.signalCode !== null) await exited;
        if (Date.now() > end) throw new Error(`skiff daemon did not answer within 60 s; see ${tmp}/daemon.log`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    /** killEngine kills the daemon (SIGKILL, its whole process group) and waits for it to be gone. */
    const killEngine = async () => {
      const e = engine;
      if (!e || e.exitCode !== null || e.signalCode !== null) return;
      const gone = new Promise((r) => e.once('exit', r));
      killGroup(e, 'SIGKILL');
      await gone;
    };
    if (daemon) await startEngine();
    const srv = startAndMatch(bins.skiff, ['serve', '--http', '127.0.0.1:0'], env, /(http:\/\/\S+\?token=(\S+))/, 60000, path.join(tmp, 'serve.log'));
    procs.push(srv.child);
    const m = await srv.done;
    return { url: m[1], token: m[2], registry, home, tmp, skiff: bins.skiff, env, cli, close, logs: tmp, startEngine, killEngine };
  } catch (e) {
    await close();
    throw e;
  }
}
