/**
 * Headless Chromium for page tests: Debian's chromium (found on PATH) driven by playwright-core (no
 * browser download), the flags the CI machine needs, a fresh profile per launch, removed on close.
 * Tests call `needs('chromium')` first so a machine without it reports the test skipped by name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { programPath } from './requires.ts';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Headless Chromium must autoplay the muted live video without a user gesture.
  '--autoplay-policy=no-user-gesture-required',
];

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Browser console lines and page errors, for failure messages. */
  logs: string[];
  close(): Promise<void>;
}

export async function launchBrowser(opts: { timeoutMs?: number } = {}): Promise<TestBrowser> {
  const executablePath = programPath('chromium');
  if (!executablePath)
    throw new Error("no chromium on PATH (or CHROMIUM_PATH): call needs('chromium') first");
  const profile = mkdtempSync(join(tmpdir(), 'lenscap-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: opts.timeoutMs ?? 30_000,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return {
    context,
    page,
    logs,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
