// Dockerfile.arm, read as data (no Docker engine runs here): multi-stage, a slim Node runtime for
// linux/arm64 and linux/arm/v7, distro ffmpeg, a non-root user in `video`, the state dir as a
// volume, a healthcheck, and nothing secret copied in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

interface Instr {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  platform?: string;
  instrs: Instr[];
}

/** Dockerfile → stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): { header: string; globalArgs: Instr[]; stages: Stage[] } {
  const lines = text.split('\n');
  const header = lines.filter((l) => l.startsWith('#')).join('\n');
  const logical: string[] = [];
  let cur = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw) && cur === '') continue;
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    if (cur.trim()) logical.push(cur.trim());
    cur = '';
  }
  const globalArgs: Instr[] = [];
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(l);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const platform = /--platform=(\S+)/.exec(args)?.[1];
      const rest = args.replace(/--platform=\S+\s*/, '').split(/\s+/);
      stages.push({
        from: rest[0]!,
        name: rest[1]?.toUpperCase() === 'AS' ? rest[2] : undefined,
        platform,
        instrs: [],
      });
    } else if (stages.length === 0) {
      globalArgs.push({ op, args });
    } else {
      stages.at(-1)!.instrs.push({ op, args });
    }
  }
  return { header, globalArgs, stages };
}

const text = readFileSync(new URL('../../Dockerfile.arm', import.meta.url), 'utf8');
const df = parseDockerfile(text);
const runtime = df.stages.at(-1)!;
const build = df.stages[0]!;
const ops = (s: Stage, op: string) => s.instrs.filter((i) => i.op === op);

test('multi-stage: a build stage on the build platform, a runtime stage for the target', () => {
  assert.ok(df.stages.length >= 2);
  assert.equal(build.name, 'build');
  assert.equal(build.platform, '$BUILDPLATFORM', 'compile once on the build host; the output is pure JS');
  assert.equal(runtime.name, 'runtime');
  assert.equal(runtime.platform, undefined, 'runtime follows --platform (arm64, arm/v7)');
  assert.ok(ops(runtime, 'COPY').some((c) => c.args.includes('--from=build')));
});

test('runtime is a slim Node base with ffmpeg from the distro', () => {
  const nodeMajor = df.globalArgs
    .find((a) => a.op === 'ARG' && a.args.startsWith('NODE_MAJOR='))
    ?.args.split('=')[1];
  assert.ok(Number(nodeMajor) >= 20);
  assert.match(runtime.from, /^node:\$\{NODE_MAJOR\}-\w+-slim$/);
  assert.ok(ops(runtime, 'RUN').some((r) => /apt-get install[^&]*\bffmpeg\b/.test(r.args)));
  assert.ok(
    !text.includes('@ffmpeg-installer') ||
      !ops(runtime, 'COPY').some((c) => c.args.includes('ffmpeg-installer')),
  );
});

test('builds for linux/arm64 and linux/arm/v7, and documents the buildx command', () => {
  const mapping = ops(build, 'RUN')
    .map((r) => r.args)
    .join('\n');
  assert.match(mapping, /arm64\)\s*arch=arm64/);
  assert.match(mapping, /armv7\)\s*arch=armhf/);
  assert.match(mapping, /scripts\/bundle\.ts --arch/);
  assert.match(df.header, /docker buildx build --platform linux\/arm64,linux\/arm\/v7 -f Dockerfile\.arm/);
});

test('runs as a non-root user in the video group', () => {
  const users = ops(runtime, 'USER');
  assert.ok(users.length > 0, 'USER set in the runtime stage');
  const last = users.at(-1)!.args;
  assert.ok(!/^(root|0)(:|$)/.test(last), `USER ${last}`);
  const create = ops(runtime, 'RUN').find((r) => r.args.includes('useradd'))?.args ?? '';
  assert.match(create, new RegExp(`useradd[^&]*--groups video[^&]*\\b${last}\\b`));
  assert.match(create, /--system/);
});

test('state dir is a volume (0700, owned by the agent), healthcheck and clean stop', () => {
  assert.ok(ops(runtime, 'VOLUME').some((v) => v.args.includes('/var/lib/lenscap')));
  assert.match(
    ops(runtime, 'RUN')
      .map((r) => r.args)
      .join('\n'),
    /chmod 0700 \/var\/lib\/lenscap/,
  );
  assert.equal(ops(runtime, 'HEALTHCHECK').length, 1);
  assert.match(ops(runtime, 'HEALTHCHECK')[0]!.args, /CMD /);
  assert.equal(ops(runtime, 'STOPSIGNAL')[0]?.args, 'SIGTERM');
  assert.match(ops(runtime, 'ENTRYPOINT')[0]!.args, /lenscap\.js/);
});

test('copies nothing secret and fetches nothing by URL', () => {
  for (const s of df.stages) {
    for (const i of [...ops(s, 'COPY'), ...ops(s, 'ADD')]) {
      assert.ok(
        !/\.(key|pem|crt|p12|pfx|jws)\b|id_rsa|\.env\b|\.npmrc|\.lenscap|certs\/|identity|secret/i.test(
          i.args,
        ),
        `${i.op} ${i.args}`,
      );
      assert.ok(!/https?:\/\//.test(i.args), `${i.op} by URL: ${i.args}`);
      assert.ok(!/^\.\s|\s\.\s*$|^\.\s+\./.test(i.args), `${i.op} of the whole context: ${i.args}`);
    }
    for (const i of [...ops(s, 'ENV'), ...ops(s, 'ARG')]) {
      assert.ok(!/(TOKEN|PASSWORD|SECRET|PRIVATE)/i.test(i.args), `${i.op} ${i.args}`);
    }
  }
  assert.ok(!ops(runtime, 'ADD').length, 'runtime uses COPY only');
});
