/**
 * Runs the real `npm start` (scripts/start.ts under tsx) in a temp dir for the stack tests, waits
 * for its stack.json, and stops it with SIGTERM, reporting every process of its tree that is still
 * alive afterwards (there must be none).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../../harness/wait.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface StackInfo {
  root: string;
  serials: string[];
  pageUrl: string;
  brokerUrl: string;
  brokerKind: string;
  cameras: Array<{ serial: string; owner: string; gateUrl: string; flvUrl: string; pid: number }>;
  pids: Record<string, unknown>;
}

export interface StackProcess {
  child: ChildProcess;
  output: () => string;
  stackFile: string;
  /** Resolves with stack.json once the stack is up. */
  ready: Promise<StackInfo>;
  /** SIGTERM, wait for exit; returns the exit code and the pids of its tree still alive. */
  stop(timeoutMs?: number): Promise<{ code: number | null; survivors: number[] }>;
}

/** Every descendant of `pid` (from /proc), so a test can check none outlives the stack. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie answers kill(0) too; once its parent is gone init reaps it, so it holds nothing.
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  } catch {
    return false;
  }
}

export function startStackProcess(dir: string, extraArgs: string[] = [], timeoutMs = 90_000): StackProcess {
  const stackFile = join(dir, 'stack.json');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'scripts', 'start.ts'),
      '--dir',
      dir,
      // The page's default port is fixed (a stable origin for the browser's keys): tests run
      // side by side, so any free port unless a test picks one.
      ...(extraArgs.includes('--port') ? [] : ['--port', '0']),
      ...extraArgs,
    ],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let tree: number[] = [];

  const ready: Promise<StackInfo> = waitUntil(
    () => {
      if (child.exitCode !== null)
        throw new Error(`npm start exited (${child.exitCode}) before stack.json:\n${out}`);
      // Up means stack.json AND the whole banner (label codes, events, logs), which start.ts prints
      // just after writing stack.json: a test that reads the output at once would race it (CI's
      // full pass once saw stack.json before "CAM-DEMO-1 label code").
      if (!existsSync(stackFile) || !out.includes('  stop    : Ctrl-C')) return undefined;
      try {
        return JSON.parse(readFileSync(stackFile, 'utf8')) as StackInfo;
      } catch {
        return undefined; // being written
      }
    },
    timeoutMs,
    'the stack (stack.json and its banner)',
    { stepMs: 200, detail: () => out },
  );

  return {
    child,
    output: () => out,
    stackFile,
    ready,
    async stop(stopTimeoutMs = 30_000) {
      if (child.pid && child.exitCode === null) {
        tree = descendants(child.pid);
        child.kill('SIGTERM');
      }
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        exited,
        new Promise<null>((r) => (timer = setTimeout(() => r(null), stopTimeoutMs))),
      ]);
      // A pending bound would hold the test process open for its whole length after the stack exited.
      clearTimeout(timer);
      const survivors = tree.filter(alive);
      // Never leave anything behind even when the assertion is about to fail.
      for (const p of [...survivors, ...(child.exitCode === null && child.pid ? [child.pid] : [])]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      return { code, survivors };
    },
  };
}

/** The page API's camera list for `user`: serial and online, as the page shows them. */
export async function pageCameras(pageUrl: string, user: string): Promise<Array<[string, boolean]>> {
  const cams = (await (await fetch(`${pageUrl}/api/cameras?user=${user}`)).json()) as Array<{
    serial: string;
    online: boolean;
  }>;
  return cams.map((c) => [c.serial, c.online]);
}

/** Asks the page API for a grant; `body` is the grant (token, flvUrl, dpop) when `status` is 200. */
export async function pageGrant(
  pageUrl: string,
  user: string,
  serial: string,
): Promise<{ status: number; body: { token: string; flvUrl: string; dpop?: string } }> {
  const res = await fetch(`${pageUrl}/api/grant`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, serial }),
  });
  const body = (await res.json().catch(() => ({}))) as { token: string; flvUrl: string; dpop?: string };
  return { status: res.status, body };
}
