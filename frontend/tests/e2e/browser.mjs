// Launches Debian's Chromium through playwright-core with a fresh profile, and cleans up after.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** launch returns { browser, context, page, close }. */
export async function launch({ width = 1200, height = 760, colorScheme = 'light' } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: run \`make setup\` (installs chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width, height },
    colorScheme,
    acceptDownloads: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  return {
    context, page, errors,
    close: async () => { await context.close().catch(() => {}); fs.rmSync(profile, { recursive: true, force: true }); },
  };
}
