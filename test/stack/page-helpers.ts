/**
 * What the owner-held page tests do in the real Chromium against the real `npm start` stack:
 * open the page as a user (their own browser profile, so their own IndexedDB keys), read a field,
 * run the real `lenscap reset` on a running camera, claim in the page, confirm a key code, watch
 * and see decoded frames grow, read the camera's security events as the dev cloud received them.
 * Every wait has a bound.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, type TestBrowser } from '../../harness/browser.ts';
import { clearOwnerState } from '../../agent/owner/owner-store.ts';
import { requestReset } from '../../agent/owner/reset.ts';
import { stateLayout } from '../../agent/state-layout.ts';
import { waitUntil } from '../../harness/wait.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Cam {
  serial: string;
  claimCode: string;
  stateDir: string;
}

export interface ReceivedEvent {
  serial: string;
  receivedAt: string;
  event: { type: string; reason?: string; source?: string; sub?: string; data?: Record<string, unknown> };
}

/** {@link waitUntil} for a page probe whose "not yet" is undefined (0 and '' are answers). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const got = await waitUntil(
    async () => {
      const v = await fn();
      return v === undefined ? undefined : { v };
    },
    ms,
    what,
    { stepMs: 200 },
  );
  return got.v;
}

export const text = (b: TestBrowser, id: string) =>
  b.page.textContent(`[data-testid="${id}"]`).then((t) => t ?? '');

export async function whenReady(b: TestBrowser): Promise<void> {
  await b.page.waitForFunction(
    () => (window as unknown as { lenscapOwner: { ready?: boolean } }).lenscapOwner.ready,
    null,
    { timeout: 15_000 },
  );
}

/** A fresh browser profile (its own IndexedDB keys) on the page as `user`. */
export async function openAs(url: string, user: string): Promise<TestBrowser> {
  const b = await launchBrowser();
  await b.page.goto(`${url}/?user=${user}`);
  await whenReady(b);
  return b;
}

/** The security events the dev cloud received for `serial` since `sinceWall` (1 s slack). */
export async function eventsSince(
  pageUrl: string,
  serial: string,
  sinceWall: number,
): Promise<ReceivedEvent[]> {
  const r = (await (await fetch(`${pageUrl}/api/events`)).json()) as { events: ReceivedEvent[] };
  return r.events.filter((e) => e.serial === serial && Date.parse(e.receivedAt) >= sinceWall - 1000);
}

export async function waitForEvent(
  pageUrl: string,
  serial: string,
  sinceWall: number,
  match: (e: ReceivedEvent['event']) => boolean,
  what: string,
): Promise<ReceivedEvent> {
  return waitFor(
    what,
    async () => (await eventsSince(pageUrl, serial, sinceWall)).find((e) => match(e.event)),
    15_000,
  );
}

/**
 * `lenscap reset` on the running camera: as root the real verb in its own process (what an
 * operator types); otherwise the same two steps it takes (clear the owner, leave the request).
 * Resolves once the verb returned, with that time.
 */
export async function resetVerb(cam: Cam): Promise<{ returnedAt: number; realVerb: boolean }> {
  if (process.getuid?.() !== 0) {
    const paths = stateLayout(cam.stateDir);
    clearOwnerState(paths);
    rmSync(paths.binding, { force: true });
    requestReset(paths, 'test');
    return { returnedAt: Date.now(), realVerb: false };
  }
  const child = spawn(
    process.execPath,
    [join(REPO, 'bin', 'lenscap.js'), 'reset', '--yes', '--state-dir', cam.stateDir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((res, rej) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`lenscap reset did not return in 60 s: ${out}`));
    }, 60_000);
    child.on('exit', (c) => {
      clearTimeout(t);
      res(c);
    });
  });
  assert.equal(code, 0, `lenscap reset exit code (output: ${out})`);
  return { returnedAt: Date.now(), realVerb: true };
}

/** `lenscap reset`, then waits for the camera's owner_reset event at the dev cloud. */
export async function localReset(pageUrl: string, cam: Cam): Promise<{ returnedAt: number }> {
  const since = Date.now();
  const r = await resetVerb(cam);
  await waitForEvent(pageUrl, cam.serial, since, (e) => e.type === 'owner_reset', 'the owner_reset event');
  return r;
}

/** Claims `serial` in the page with the label code; resolves with the status line. */
export async function claimInPage(b: TestBrowser, serial: string, code: string): Promise<string> {
  await b.page.fill('[data-testid="member-serial"]', serial);
  await b.page.fill('[data-testid="claim-code"]', code);
  await b.page.click('[data-testid="claim"]');
  await b.page.waitForFunction(
    () => /^claimed|^refused/.test(document.querySelector('[data-testid="claim-status"]')?.textContent ?? ''),
    null,
    { timeout: 20_000 },
  );
  return text(b, 'claim-status');
}

/** Waits for the key-code check and returns the code shown. */
export async function codeShown(b: TestBrowser): Promise<string> {
  await b.page.waitForSelector('[data-testid="confirm-box"]:not([hidden])', { timeout: 10_000 });
  return text(b, 'confirm-code');
}

/** Waits for the member status line to settle (accepted, transferred, not …, error) and returns it. */
export async function memberStatus(b: TestBrowser, before = ''): Promise<string> {
  await b.page.waitForFunction(
    (prev) => {
      const t = document.querySelector('[data-testid="member-status"]')?.textContent ?? '';
      return t !== prev && /accepted|transferred|^not |^error/.test(t);
    },
    before,
    { timeout: 20_000 },
  );
  return text(b, 'member-status');
}

/** Clicks Watch on `serial` and waits until decoded frames grow; returns the last count. */
export async function watchAndSeeFrames(b: TestBrowser, serial: string, who: string): Promise<number> {
  const watch = b.page.locator(`[data-testid="watch-${serial}"]`);
  await watch.waitFor({ timeout: 15_000 });
  await watch.click();
  return framesGrow(b, who);
}

export async function framesGrow(b: TestBrowser, who: string): Promise<number> {
  await b.page
    .waitForFunction(() => Number(document.querySelector('[data-testid="frames"]')?.textContent) > 5, null, {
      timeout: 45_000,
    })
    .catch(async () =>
      assert.fail(`${who} never decoded: ${await text(b, 'play-status')} ${b.logs.join(' | ')}`),
    );
  const f1 = Number(await text(b, 'frames'));
  await b.page.waitForTimeout(1500);
  const f2 = Number(await text(b, 'frames'));
  assert.ok(f2 > f1, `${who}'s decoded frames grow: ${f1} → ${f2}`);
  return f2;
}
