/**
 * Camera drivers without a camera: v4l2 discovery against a fake sysfs tree, format parsing of
 * real ffmpeg `-list_formats` output shapes, mode selection (H.264 copy > hardware encoder >
 * libx264), argument building, coded errors; the test pattern's arguments, run once through the
 * real ffmpeg here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  captureDevices,
  createV4l2Driver,
  isEncoderNode,
  listVideoDevices,
  parseFfmpegFormats,
  selectMode,
  v4l2Args,
} from '../../drivers/camera/v4l2.ts';
import { testPatternArgs } from '../../drivers/camera/testpattern.ts';
import { encoderArgs, gopFrames } from '../../drivers/camera/encoder.ts';
import { selectCamera } from '../../drivers/camera/registry.ts';
import { CameraError, type CameraRequest, type Runner } from '../../drivers/camera/types.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { ffmpegPath, needsDrawtext } from '../../harness/ffmpeg.ts';

/** Given to fake runners only: no ffmpeg runs in those tests. */
const NOT_RUN = '/not-run/ffmpeg';

const req: CameraRequest = {
  device: '/dev/video0',
  width: 640,
  height: 480,
  fps: 15,
  gopSeconds: 1,
  bitrateKbps: 1500,
  label: 'cam',
  color: 'white',
};

const UVC = `[video4linux2,v4l2 @ 0x55] Compressed:       mjpeg :          Motion-JPEG : 1280x720 640x480 320x240
[video4linux2,v4l2 @ 0x55] Raw       :     yuyv422 :           YUYV 4:2:2 : 640x480 320x240
/dev/video0: Immediate exit requested`;
const PICAM = `[video4linux2,v4l2 @ 0x1] Raw       :     yuv420p :     Planar YUV 4:2:0 : {32-2592, 2}x{32-1944, 2}
[video4linux2,v4l2 @ 0x1] Compressed:        h264 :                H.264 : {32-2592, 2}x{32-1944, 2}
[video4linux2,v4l2 @ 0x1] Compressed:       mjpeg :            JFIF JPEG : {32-2592, 2}x{32-1944, 2}`;
const VIVID = `[video4linux2,v4l2 @ 0x2] Raw       :     yuyv422 :           YUYV 4:2:2 : 320x180 640x360 640x480 1280x720
[video4linux2,v4l2 @ 0x2] Raw       :       rgb24 :     24-bit RGB 8-8-8 : 320x180 640x360 640x480 1280x720`;

test('parses discrete and stepwise sizes', () => {
  const uvc = parseFfmpegFormats(UVC);
  assert.deepEqual(
    uvc.map((f) => [f.format, f.compressed, f.sizes.length]),
    [
      ['mjpeg', true, 3],
      ['yuyv422', false, 2],
    ],
  );
  const pi = parseFfmpegFormats(PICAM);
  assert.deepEqual(pi[1], {
    format: 'h264',
    compressed: true,
    sizes: [],
    stepwise: { minW: 32, maxW: 2592, minH: 32, maxH: 1944 },
  });
});

test('mode selection: native H.264 is copied, else hardware encoder, else libx264', () => {
  assert.deepEqual(selectMode(parseFfmpegFormats(PICAM), req, { m2mEncoder: true }), {
    inputFormat: 'h264',
    encoder: 'copy',
  });
  assert.deepEqual(selectMode(parseFfmpegFormats(UVC), req, { m2mEncoder: true }), {
    inputFormat: 'mjpeg',
    encoder: 'h264_v4l2m2m',
  });
  assert.deepEqual(selectMode(parseFfmpegFormats(UVC), req, { m2mEncoder: false }), {
    inputFormat: 'mjpeg',
    encoder: 'libx264',
  });
  assert.deepEqual(
    selectMode(parseFfmpegFormats(VIVID), { width: 640, height: 360 }, { m2mEncoder: false }),
    { inputFormat: 'yuyv422', encoder: 'libx264' },
  );
  // yuyv only at this size: picks the raw format.
  assert.deepEqual(
    selectMode(
      parseFfmpegFormats(UVC.replace(' 640x480 320x240\n[video4linux2', ' 1280x720\n[video4linux2')),
      req,
      { m2mEncoder: false },
    ).inputFormat,
    'yuyv422',
  );
});

test('a size the device does not offer is ERR_CAMERA_MODE_UNSUPPORTED', () => {
  assert.throws(
    () => selectMode(parseFfmpegFormats(UVC), { width: 1920, height: 1080 }, { m2mEncoder: false }),
    (e: unknown) => e instanceof CameraError && e.code === 'ERR_CAMERA_MODE_UNSUPPORTED',
  );
  assert.throws(
    () => selectMode([], req, { m2mEncoder: false }),
    (e: unknown) => e instanceof CameraError && e.code === 'ERR_CAMERA_MODE_UNSUPPORTED',
  );
});

test('argument building: input format, size, rate, device; short GOP', () => {
  const a = v4l2Args(req, { inputFormat: 'mjpeg', encoder: 'libx264' });
  assert.deepEqual(a.input, [
    '-f',
    'v4l2',
    '-input_format',
    'mjpeg',
    '-video_size',
    '640x480',
    '-framerate',
    '15',
    '-i',
    '/dev/video0',
  ]);
  assert.deepEqual(a.video.slice(0, 6), ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency']);
  assert.equal(a.video[a.video.indexOf('-g') + 1], '15');
  assert.deepEqual(v4l2Args(req, { inputFormat: 'h264', encoder: 'copy' }).video, ['-c:v', 'copy']);
  assert.ok(encoderArgs('h264_v4l2m2m', 30, 1, 2000).includes('h264_v4l2m2m'));
  assert.equal(gopFrames(30, 5), 60, 'GOP never longer than 2 s');
  assert.equal(gopFrames(15, 0.5), 8);
});

test('sysfs discovery: capture nodes vs codec nodes, ordered', () => {
  const tmp = makeTempDir();
  try {
    const v4l = join(tmp.dir, 'sys/class/video4linux');
    for (const [n, name] of [
      ['video10', 'bcm2835-codec-decode'],
      ['video11', 'bcm2835-codec-encode'],
      ['video2', 'vivid'],
      ['video0', 'UVC Camera'],
    ]) {
      mkdirSync(join(v4l, n!), { recursive: true });
      writeFileSync(join(v4l, n!, 'name'), `${name}\n`);
    }
    const devs = listVideoDevices(join(tmp.dir, 'sys'), '/dev');
    assert.deepEqual(
      devs.map((d) => d.path),
      ['/dev/video0', '/dev/video2', '/dev/video10', '/dev/video11'],
    );
    assert.deepEqual(
      captureDevices(devs).map((d) => d.name),
      ['UVC Camera', 'vivid'],
    );
    assert.deepEqual(
      devs.filter(isEncoderNode).map((d) => d.name),
      ['bcm2835-codec-encode'],
    );
    assert.deepEqual(listVideoDevices(join(tmp.dir, 'nothing')), []);
  } finally {
    tmp.cleanup();
  }
});

test('v4l2 driver: missing, busy and probe errors are coded', async () => {
  const runner =
    (out: string): Runner =>
    async () => ({ code: 1, out });
  const mk = (out: string, exists = true) =>
    createV4l2Driver({ ffmpegPath: NOT_RUN, runner: runner(out), m2mEncoder: false, exists: () => exists });
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: CameraError) => e.code,
    );
  assert.equal(await code(mk('', false).prepare(req)), 'ERR_CAMERA_MISSING');
  assert.equal(await code(mk('/dev/video0: Device or resource busy').prepare(req)), 'ERR_CAMERA_BUSY');
  assert.equal(await code(mk('Inappropriate ioctl for device').prepare(req)), 'ERR_CAMERA_PROBE');
  assert.equal(
    await code(mk(UVC).prepare({ ...req, width: 1920, height: 1080 })),
    'ERR_CAMERA_MODE_UNSUPPORTED',
  );
  const ok = await mk(UVC).prepare(req);
  assert.match(ok.describe, /mjpeg 640x480@15 libx264/);
});

test('auto picks v4l2 when a capture device exists, else the test pattern, and says why', async () => {
  const tmp = makeTempDir();
  const runner: Runner = async (_c, args) => ({
    code: 0,
    out: args.includes('-filters') ? ' T.C drawtext V->V' : ' V..... h264_v4l2m2m',
  });
  try {
    const none = await selectCamera({
      driver: 'auto',
      device: '/dev/video0',
      ffmpegPath: NOT_RUN,
      runner,
      sysfsRoot: join(tmp.dir, 'sys'),
    });
    assert.equal(none.driver.name, 'testpattern');
    assert.match(none.reason, /no V4L2 capture device/);
    const v4l = join(tmp.dir, 'sys/class/video4linux/video0');
    mkdirSync(v4l, { recursive: true });
    writeFileSync(join(v4l, 'name'), 'vivid');
    const some = await selectCamera({
      driver: 'auto',
      device: '/dev/video0',
      ffmpegPath: NOT_RUN,
      runner,
      sysfsRoot: join(tmp.dir, 'sys'),
    });
    assert.equal(some.driver.name, 'v4l2');
    assert.match(some.reason, /vivid/);
    assert.equal(
      (
        await selectCamera({
          driver: 'testpattern',
          device: '/dev/video0',
          ffmpegPath: NOT_RUN,
          runner,
          sysfsRoot: join(tmp.dir, 'sys'),
        })
      ).driver.name,
      'testpattern',
    );
  } finally {
    tmp.cleanup();
  }
});

test(
  'the test pattern (with clock overlay when drawtext exists) runs in the real ffmpeg',
  needsDrawtext(),
  () => {
    const a = testPatternArgs(
      { ...req, width: 160, height: 90, label: "it's: 50% [x]" },
      { hasDrawtext: true },
    );
    assert.ok(a.input.includes('lavfi'));
    const vf = a.video[a.video.indexOf('-vf') + 1] ?? '';
    assert.match(vf, /localtime/);
    const out = execFileSync(
      ffmpegPath(),
      [
        '-hide_banner',
        '-loglevel',
        'error',
        ...a.input.filter((x) => x !== '-re'),
        '-frames:v',
        '3',
        ...a.video,
        '-f',
        'null',
        '-',
      ],
      { timeout: 15_000 },
    );
    assert.equal(out.length, 0);
    const plain = testPatternArgs(req, { hasDrawtext: false });
    assert.equal(plain.video.includes('-vf'), false, 'no drawtext: no overlay, still a picture');
  },
);
