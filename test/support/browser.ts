import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { findExecutable } from './gearmand.js';

/** Debian's chromium (`apt-get install chromium`); never a downloaded browser. */
export const CHROMIUM = findExecutable('chromium');

/** Where tests leave what a person may want to look at (screenshots); ignored by git. */
export const TEST_OUTPUT = join(process.cwd(), 'test-output');

/** A real headless Chromium with a fresh profile, driven over the DevTools protocol; close() removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!CHROMIUM) throw new Error('chromium is not installed');
  const profile = mkdtempSync(join(tmpdir(), 'nestjs-gearman-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
