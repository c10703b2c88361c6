// Screenshots of the UI against the fake bridge (a development aid: node tests/e2e/shots-fake.mjs OUTDIR).
import path from 'node:path';
import fs from 'node:fs';
import { startFakeBridge } from '../fake-bridge.mjs';
import { launch } from './browser.mjs';

const out = process.argv[2] ?? '/tmp/skiff-shots';
fs.mkdirSync(out, { recursive: true });
const bridge = await startFakeBridge({ token: 'dev' });
for (const scheme of ['light', 'dark']) {
  const b = await launch({ colorScheme: scheme });
  const { page } = b;
  try {
    await page.goto(bridge.url);
    await page.waitForSelector('[data-testid="containers-empty"], [data-testid="containers"]');
    if (scheme === 'light') {
      await page.screenshot({ path: path.join(out, 'empty.png') });
      await page.click('[data-testid="run-open"]');
      await page.fill('#r-image', 'busybox');
      await page.fill('#r-cmd', 'sh -c "while true; do date; sleep 1; done"');
      await page.click('text=+ Port');
      await page.fill('[aria-label="Port 1"]', '8080:80x');
      await page.click('[data-testid="run-submit"]');
      await page.waitForSelector('[data-field="ports"]');
      await page.screenshot({ path: path.join(out, 'run-error.png') });
      await page.fill('[aria-label="Port 1"]', '8080:80');
      await page.click('[data-testid="run-submit"]');
      await page.waitForSelector('[data-testid="logview"]');
      await page.waitForTimeout(800);
      await page.screenshot({ path: path.join(out, 'detail-logs.png') });
      await page.click('[data-tab="terminal"]');
      await page.waitForTimeout(300);
      await page.keyboard.type('echo hello\r');
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(out, 'terminal.png') });
    }
    await page.goto(bridge.url + '#/containers');
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(out, `list-${scheme}.png`) });
    await page.goto(bridge.url + '#/images');
    await page.fill('[data-testid="pull-ref"]', 'alpine:3.20');
    await page.click('[data-testid="pull-submit"]');
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(out, `images-pull-${scheme}.png`) });
    await page.waitForTimeout(600);
    await page.click('[data-image="alpine:3.20"]');
    await page.screenshot({ path: path.join(out, `images-${scheme}.png`) });
    await page.goto(bridge.url + '#/volumes');
    await page.waitForSelector('[data-testid="volumes"]');
    await page.click('[data-volume="data"]');
    await page.screenshot({ path: path.join(out, `volumes-${scheme}.png`) });
    if (b.errors.length) console.error('page errors:', b.errors);
  } finally {
    await b.close();
  }
}
await bridge.close();
console.log(`screenshots in ${out}`);
