// End-to-end: the built UI in Chromium against `skiff serve` attached to a `skiff daemon` (the real
// engine, QEMU) and images from cmd/skiff-testregistry. Pull with progress, run a container printing
// lines and watch them arrive, type into the exec terminal, see new lines in a pop-out log window,
// drop a file on the running container (mounted in the same container),
// stop, kill and restart the engine under the open page, search and bulk remove. Screenshots go to $E2E_SHOTS (default
// frontend/test-results/e2e).
//
//   node tests/e2e/run.mjs            # builds skiff and the registry unless $SKIFF_BIN / $SKIFF_TESTREGISTRY_BIN
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';
import { ROOT, startStack } from './stack.mjs';

const SHOTS = process.env.E2E_SHOTS ?? path.join(ROOT, 'frontend/test-results/e2e');
fs.mkdirSync(SHOTS, { recursive: true });

const BOOT = 180_000; // a VM under TCG on a busy 2-core CI machine (80 s seen at load 16)
let failed = false;
let stack;
let b;

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

async function step(name, f) {
  const t0 = Date.now();
  try {
    await f();
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    if (b) await b.page.screenshot({ path: path.join(SHOTS, `fail-${name.replace(/\W+/g, '-')}.png`) }).catch(() => {});
    throw e;
  }
}

const shot = (name) => b.page.screenshot({ path: path.join(SHOTS, `${name}.png`) });

try {
  stack = await startStack({ daemon: true });
  console.log(`e2e: dashboard ${stack.url.replace(/token=\w+/, 'token=…')}, registry ${stack.registry}`);
  b = await launch({ width: 1200, height: 760 });
  const { page } = b;
  page.on('dialog', (d) => d.accept());
  const image = `${stack.registry}/busybox:latest`;
  const multi = `${stack.registry}/multilayer:latest`;

  await step('window loads and connects', async () => {
    await page.goto(stack.url);
    await page.waitForSelector('[data-testid="containers-empty"]', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="conn"]')?.textContent?.includes('connected'));
    check((await page.title()).startsWith('Skiff — 0 containers'), `title is "${await page.title()}"`);
    await shot('01-empty');
  });

  await step('pull shows per-layer progress', async () => {
    await page.click('a[href="#/images"]');
    await page.waitForSelector('[data-testid="images-empty"]');
    // Record every layer row the progress view ever shows (a local pull is quick).
    await page.evaluate(() => {
      const w = window;
      w.__layers = new Set();
      w.__layerStates = [];
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('[data-testid="pull-progress"] [data-layer]')) {
          w.__layers.add(el.getAttribute('data-layer'));
          w.__layerStates.push(el.textContent);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    for (const ref of [multi, image]) {
      await page.fill('[data-testid="pull-ref"]', ref);
      await page.click('[data-testid="pull-submit"]');
      await page.waitForSelector(`[data-image="${ref}"]`, { timeout: 60_000 });
    }
    const layers = await page.evaluate(() => [...window.__layers]);
    check(layers.length >= 2, `saw progress for ${layers.length} layers (${layers})`);
    check(layers.every((l) => /^sha256:[0-9a-f]{64}$/.test(l)), `layer ids are digests: ${layers}`);
    await page.click(`[data-image="${image}"]`);
    await page.waitForSelector('[data-testid="image-inspect"]');
    await shot('02-images');
  });

  let id = '';
  await step('run dialog rejects a bad port next to the field', async () => {
    await page.click('a[href="#/containers"]');
    await page.click('[data-testid="run-open"]');
    await page.fill('#r-image', image);
    await page.fill('#r-name', 'e2e-logs');
    await page.fill('#r-cmd', `sh -c 'for i in $(seq 1 40); do echo e2e-line-$i; sleep 0.15; done; echo to-stderr >&2; exec sleep 600'`);
    await page.click('text=+ Port');
    await page.fill('[aria-label="Port 1"]', '80:http');
    await page.click('[data-testid="run-submit"]');
    const err = await page.waitForSelector('[data-field="ports"]', { timeout: 20_000 });
    check((await err.textContent()).includes('80:http'), `error names the bad value: ${await err.textContent()}`);
    await shot('03-run-error');
    await page.click('[aria-label="Remove port"]');
  });

  await step('run a container and watch its lines arrive live', async () => {
    await page.click('[data-testid="run-submit"]');
    // Either the detail view opens or the dialog shows why the container did not start.
    const first = await page.waitForSelector('[data-testid="logview"], [data-testid="run-dialog"] .field-error', { timeout: BOOT });
    if (await first.getAttribute('data-testid') !== 'logview') throw new Error(`run failed in the UI: ${(await first.textContent()).slice(0, 400)}`);
    id = decodeURIComponent(page.url().split('#/containers/')[1] ?? '');
    check(/^[0-9a-f]{64}$/.test(id), `navigated to the container (${page.url()})`);
    // Sample the line count while the container prints: live streaming shows intermediate counts.
    const seen = new Set();
    const end = Date.now() + BOOT;
    for (;;) {
      const n = await page.evaluate(() => document.querySelectorAll('[data-testid="log-viewport"] .line').length);
      const last = await page.evaluate(() => [...document.querySelectorAll('[data-testid="log-viewport"] .line')].at(-1)?.textContent ?? '');
      seen.add(n);
      if (last.includes('to-stderr')) break;
      if (Date.now() > end) throw new Error(`log did not reach the last line; counts seen ${[...seen]}`);
      await page.waitForTimeout(100);
    }
    const mid = [...seen].filter((n) => n > 0 && n < 41);
    check(mid.length >= 3, `lines arrived progressively (counts seen: ${[...seen].join(',')})`);
    const count = await page.textContent('[data-testid="log-count"]');
    check(count.startsWith('41 lines'), `every line once: "${count}"`);
    const text = await page.textContent('[data-testid="log-viewport"]');
    check(text.includes('e2e-line-40'), 'last line shown');
    check(await page.$('[data-testid="log-viewport"] .line.err') !== null, 'stderr line marked');
    await page.fill('[data-testid="log-search"]', 'e2e-line-3');
    await page.waitForFunction(() => document.querySelector('[data-testid="log-count"]')?.textContent?.startsWith('11 lines'));
    await shot('04-logs-search');
    await page.fill('[data-testid="log-search"]', '');
    await page.waitForTimeout(300);
    await shot('05-logs');
  });

  await step('exec terminal runs a typed command', async () => {
    await page.click('[data-tab="terminal"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="term-status"]')?.textContent === 'Connected', null, { timeout: 30_000 });
    await page.waitForFunction(() => /#\s*$/.test(document.querySelector('.xterm-rows')?.textContent?.trim() ?? '') ||
      (document.querySelector('.xterm-rows')?.textContent ?? '').includes('#'), null, { timeout: 30_000 });
    await page.click('.xterm');
    await page.keyboard.type('echo e2e-$((6*7)); uname -s\r');
    await page.waitForFunction(() => {
      const t = document.querySelector('.xterm-rows')?.textContent ?? '';
      return t.includes('e2e-42') && t.includes('Linux');
    }, null, { timeout: 30_000 });
    await shot('06-terminal');
    await page.keyboard.type('exit\r');
    await page.waitForFunction(() => document.querySelector('[data-testid="term-status"]')?.textContent === 'Exited', null, { timeout: 20_000 });
  });

  await step('containers list shows the running container with stats', async () => {
    await page.click('a[href="#/containers"]');
    const row = `tr[data-container-id="${id}"]`;
    await page.waitForSelector(`${row}[data-state="running"]`);
    await page.waitForFunction((sel) => (document.querySelector(sel)?.querySelectorAll('polyline').length ?? 0) >= 2, row, { timeout: 20_000 });
    check((await page.title()).includes('1 running'), `title is "${await page.title()}"`);
    await shot('07-list');
  });

  await step('a pop-out log window shows new lines as they arrive', async () => {
    await page.click(`tr[data-container-id="${id}"]`);
    await page.waitForSelector('[data-testid="log-popout"]');
    const [win] = await Promise.all([page.context().waitForEvent('page'), page.click('[data-testid="log-popout"]')]);
    await win.waitForLoadState();
    check(win.url().includes(`#/logs/${id}`), `the window shows the container's logs (${win.url()})`);
    const text = () => win.evaluate(() => document.querySelector('[data-testid="log-viewport"]')?.textContent ?? '');
    await win.waitForFunction(() => (document.querySelector('[data-testid="log-viewport"]')?.textContent ?? '').includes('e2e-line-40'), null, { timeout: 30_000 });
    // New output of the container's PID 1 (its stdout is the log) while the window is open.
    for (const n of [1, 2]) {
      stack.cli(['exec', id, 'sh', '-c', `echo popout-live-${n} > /proc/1/fd/1`]);
      await win.waitForFunction((m) => (document.querySelector('[data-testid="log-viewport"]')?.textContent ?? '').includes(m), `popout-live-${n}`, { timeout: 30_000 });
    }
    check((await text()).indexOf('popout-live-1') < (await text()).indexOf('popout-live-2'), 'lines in order');
    await win.screenshot({ path: path.join(SHOTS, '08-popout-logs.png') });
    await win.close();
    await page.click('a[href="#/containers"]');
  });

  await step('the detail view: dated log lines, wrap, inspect with the VM\'s resources, stats with axes', async () => {
    await page.click(`tr[data-container-id="${id}"]`);
    await page.waitForSelector('[data-testid="logview"]');
    await page.check('text=Timestamps');
    await page.waitForFunction(() => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}/.test(document.querySelector('[data-testid="log-viewport"] .line .ts')?.textContent ?? ''));
    await page.check('[data-testid="log-wrap"]');
    await page.uncheck('text=Timestamps');
    await page.click('[data-tab="inspect"]');
    const res = await page.waitForSelector('[data-testid="inspect-resources"]');
    check(/[1-9]\d* CPUs · 512 MiB memory/.test(await res.textContent()), `resources: ${await res.textContent()}`);
    const env = [JSON.parse(stack.cli(['inspect', id]))].flat()[0].Config?.Env ?? [];
    const shownEnv = await page.textContent('[data-testid="inspect-env"]');
    check(env.length ? env.every((e) => shownEnv.includes(e)) : shownEnv.trim() === '—', `the environment ${JSON.stringify(env)} is listed: ${shownEnv}`);
    await shot('08a-inspect');
    await page.click('[data-tab="stats"]');
    await page.waitForSelector('[data-testid="chart"] [data-axis="x"]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="chart"] polyline') !== null, null, { timeout: 30_000 });
    await shot('08a-stats');
    await page.click('[data-tab="logs"]');
    await page.click('a[href="#/containers"]');
  });

  await step('a file dropped on the running container is mounted in it, keeping its data', async () => {
    const row = `tr[data-container-id="${id}"]`;
    stack.cli(['exec', id, 'sh', '-c', 'echo kept > /layer.txt']);
    const inspect = () => [JSON.parse(stack.cli(['inspect', id]))].flat()[0];
    const before = inspect();
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'drop-'));
    const file = path.join(dir, 'app.conf');
    fs.writeFileSync(file, 'dropped-file\n');
    const dropOn = (sel, names) => page.evaluate(({ sel, names }) => {
      const dt = new DataTransfer();
      for (const n of names) dt.items.add(new File(['x'], n));
      const el = document.querySelector(sel);
      el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, { sel, names });
    // Two items at once cannot be honoured: it says why and opens nothing.
    await dropOn(row, ['a.conf', 'b.conf']);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="activity-error"]')].some((e) => e.textContent.includes('one folder or file at a time')));
    check(await page.$('[data-testid="mount-dialog"]') === null, 'no dialog for a refused drop');
    await dropOn(row, ['app.conf']);
    await page.waitForSelector('[data-testid="mount-dialog"]');
    await page.waitForFunction(() => /running container gets it at once|VM restarts/.test(document.querySelector('[data-testid="mount-plan"]')?.textContent ?? ''));
    check(await page.inputValue('#m-target') === '/mnt/app.conf', `default target ${await page.inputValue('#m-target')}`);
    // A path that does not exist: the dialog says so and nothing changes.
    await page.fill('#m-host', path.join(dir, 'missing.conf'));
    await page.click('[data-testid="mount-dialog"] button[type="submit"]');
    const err = await page.waitForSelector('[data-testid="mount-dialog"] .field-error', { timeout: 30_000 });
    check((await err.textContent()).includes('does not exist'), `the dialog says why: ${await err.textContent()}`);
    check((inspect().Mounts ?? []).length === 0 && inspect().StartedAt === before.StartedAt, 'a failed mount changed nothing');
    await page.fill('#m-host', file);
    await page.fill('#m-target', '/etc/app.conf');
    await shot('08b-mount-file');
    await page.click('[data-testid="mount-dialog"] button[type="submit"]');
    await page.waitForSelector('[data-testid="mount-dialog"]', { state: 'detached', timeout: BOOT });
    const got = stack.cli(['exec', id, 'cat', '/etc/app.conf', '/layer.txt']);
    check(got === 'dropped-file\nkept\n', `the file and the writable layer in the container: ${JSON.stringify(got)}`);
    const after = inspect();
    check(after.ID === before.ID && after.Mounts?.length === 1 && after.Mounts[0].Target === '/etc/app.conf', `the same container has it: ${JSON.stringify(after.Mounts)}`);
    check(stack.cli(['logs', id]).includes('e2e-line-40'), 'its logs are kept');
  });

  await step('settings: the data dir, defaults the Run dialog shows and a new container gets', async () => {
    await page.keyboard.press('Control+Comma');
    await page.waitForSelector('[data-testid="data-dir"]');
    check((await page.textContent('[data-testid="data-dir"]')) === stack.home, `data dir ${await page.textContent('[data-testid="data-dir"]')}`);
    await page.fill('#s-cpus', '1');
    await page.fill('#s-mem', '320m');
    await page.click('[data-testid="settings-save"]');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="activity-info"]')].some((e) => e.textContent.includes('Settings saved')));
    await shot('09a-settings');
    await page.click('a[href="#/containers"]');
    await page.click('[data-testid="run-open"]');
    check(await page.getAttribute('#r-mem', 'placeholder') === '320m', `the Run dialog's memory default: ${await page.getAttribute('#r-mem', 'placeholder')}`);
    await page.keyboard.press('Escape');
    const made = stack.cli(['create', image, 'true']).trim();
    const vm = [JSON.parse(stack.cli(['inspect', made]))].flat()[0].VM;
    check(vm.CPUs === 1 && vm.MemoryMiB === 320, `a container created after: ${JSON.stringify(vm)}`);
    stack.cli(['rm', made]);
  });

  await step('stop says what it waits for in a full-size toast', async () => {
    const row = `tr[data-container-id="${id}"]`;
    await page.click(`${row} [data-action="stop"]`);
    // sleep as PID 1 ignores SIGTERM: the stop waits its 10 s, then kills.
    const toast = await page.waitForSelector('[data-testid="activity-progress"]', { timeout: 10_000 });
    const h = await toast.evaluate((el) => el.getBoundingClientRect().height);
    check(h >= 40, `the toast is full size (${h} px), not a 4 px bar`);
    const t = await toast.textContent();
    check(/Stopping e2e-logs…/.test(t) && t.includes('Up to 10 s'), `the toast says what it waits for: "${t}"`);
    await shot('09-stopping');
    await page.waitForSelector(`${row}[data-state="exited"]`, { timeout: 60_000 });
    await shot('10-stopped');
  });

  await step('engine killed and restarted under the open page: banner, nothing sent twice', async () => {
    const row = `tr[data-container-id="${id}"]`;
    await stack.killEngine();
    await page.waitForSelector('[data-testid="engine-down"]', { timeout: 20_000 });
    check((await page.textContent('[data-testid="engine-down"]')).includes('skiff daemon'), 'the banner says how to start the engine');
    await page.waitForSelector(`${row}[data-state="unknown"]`);
    check(await page.$eval(`${row} [data-action="start"]`, (b) => b.disabled), 'actions are disabled');
    check(await page.$eval('[data-testid="run-open"]', (b) => b.disabled), 'Run… is disabled');
    await shot('11-engine-down');
    // A click that got through as the engine went away (the button forced on): it fails at once.
    await page.$eval(`${row} [data-action="start"]`, (b) => { b.disabled = false; b.click(); });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="activity-error"]')].some((e) => e.textContent.includes('Starting e2e-logs failed')), null, { timeout: 10_000 });
    await stack.startEngine();
    await page.waitForSelector('[data-testid="engine-down"]', { state: 'detached', timeout: 30_000 });
    await page.waitForSelector(`${row}[data-state="exited"]`, { timeout: 20_000 });
    check(!(await page.$eval(`${row} [data-action="start"]`, (b) => b.disabled)), 'actions are enabled again');
    // The failed Start is not sent now that the engine is back.
    await page.waitForTimeout(3000);
    const state = JSON.parse(stack.cli(['inspect', id]))[0]?.State ?? JSON.parse(stack.cli(['inspect', id])).State;
    check(state === 'exited', `the container stayed exited after the engine came back (State ${state})`);
    await shot('12-engine-back');
  });

  await step('search and bulk remove', async () => {
    const row = `tr[data-container-id="${id}"]`;
    await page.keyboard.press('/');
    check(await page.evaluate(() => document.activeElement?.getAttribute('data-testid') === 'search'), '/ focuses the search');
    await page.keyboard.type('no-such-thing');
    await page.waitForSelector('[data-testid="no-match"]');
    await page.fill('[data-testid="search"]', 'e2e-logs');
    await page.waitForSelector(row);
    await page.check(`${row} input[type="checkbox"]`);
    await page.waitForSelector('[data-testid="bulkbar"]');
    await shot('13-selected');
    await page.click('[data-testid="bulk-remove"]');
    await page.waitForSelector(row, { state: 'detached', timeout: 30_000 });
    await page.fill('[data-testid="search"]', '');
    await page.waitForSelector('[data-testid="containers-empty"]');
    const ps = stack.cli(['ps', '-a', '-q']).trim();
    check(ps === '', `no containers left (skiff ps -a: ${ps})`);
  });

  check(b.errors.length === 0, `no page errors: ${b.errors.map((e) => e.message).join('; ')}`);
  console.log(`e2e: passed; screenshots in ${SHOTS}`);
} catch (e) {
  failed = true;
  console.error(`e2e: ${e.stack ?? e}`);
  if (stack) {
    for (const f of ['serve.log', 'daemon.log']) {
      const log = path.join(stack.logs, f);
      if (fs.existsSync(log)) console.error(`--- ${f} (tail) ---\n${fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
  }
} finally {
  await b?.close();
  await stack?.close();
}
process.exit(failed ? 1 : 0);
