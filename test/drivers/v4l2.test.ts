/**
 * V4L2 driver without a camera: discovery over a fake sysfs tree, ffmpeg `-list_formats` parsing,
 * mode selection (native H.264 copy > hardware encoder > libx264) and the exact ffmpeg arguments,
 * plus the coded errors for a missing, busy or mode-less device.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
import { gopFrames } from '../../drivers/camera/encoder.ts';
import { CameraError, type Runner } from '../../drivers/camera/types.ts';
import { makeTempDir } from '../../harness/tmp.ts';
import { VIVID, req } from './v4l2-fixtures.ts';

/** Given to fake runners only: no ffmpeg runs in those tests. */
const NOT_RUN = '/not-run/ffmpeg';

const USB_CAM = `
[video4linux2,v4l2 @ 0x55d0c8] Compressed:       mjpeg :          Motion-JPEG : 1280x720 640x480 320x240
[video4linux2,v4l2 @ 0x55d0c8] Raw       :     yuyv422 :           YUYV 4:2:2 : 640x480 320x240
/dev/video0: Immediate exit requested`;
const H264_CAM = `
[video4linux2,v4l2 @ 0x1] Raw       :     yuyv422 :           YUYV 4:2:2 : 640x480 1280x720
[video4linux2,v4l2 @ 0x1] Compressed:        h264 :                H.264 : 1920x1080 1280x720 640x480
[video4linux2,v4l2 @ 0x1] Compressed:       mjpeg :          Motion-JPEG : 1920x1080 1280x720 640x480`;

test('parses discrete and stepwise formats, including descriptions with colons', () => {
  const usb = parseFfmpegFormats(USB_CAM);
  assert.deepEqual(
    usb.map((f) => [f.format, f.compressed, f.sizes]),
    [
      ['mjpeg', true, ['1280x720', '640x480', '320x240']],
      ['yuyv422', false, ['640x480', '320x240']],
    ],
  );
  const vivid = parseFfmpegFormats(VIVID);
  assert.equal(vivid.length, 2);
  assert.deepEqual(vivid[0]!.stepwise, { minW: 16, maxW: 1920, minH: 16, maxH: 1080 });
  assert.deepEqual(parseFfmpegFormats('garbage\nno formats here'), []);
});

test('mode selection: native H.264 is copied as is', () => {
  const m = selectMode(parseFfmpegFormats(H264_CAM), req, { m2mEncoder: true });
  assert.deepEqual(m, { inputFormat: 'h264', encoder: 'copy' });
  const a = v4l2Args(req, m);
  assert.deepEqual(a.input, [
    '-f',
    'v4l2',
    '-input_format',
    'h264',
    '-video_size',
    '640x480',
    '-framerate',
    '15',
    '-i',
    '/dev/video0',
  ]);
  assert.deepEqual(a.video, ['-c:v', 'copy']);
});

test('mode selection: MJPEG through the hardware encoder when the board has one, else libx264', () => {
  const formats = parseFfmpegFormats(USB_CAM);
  assert.deepEqual(selectMode(formats, req, { m2mEncoder: true }), {
    inputFormat: 'mjpeg',
    encoder: 'h264_v4l2m2m',
  });
  const sw = selectMode(formats, req, { m2mEncoder: false });
  assert.deepEqual(sw, { inputFormat: 'mjpeg', encoder: 'libx264' });
  const v = v4l2Args(req, sw).video;
  assert.deepEqual(v.slice(0, 6), ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency']);
  // GOP of 1 s at 15 fps, no scene-cut keyframes: a joining viewer waits at most a second.
  assert.equal(v[v.indexOf('-g') + 1], '15');
  assert.equal(v[v.indexOf('-sc_threshold') + 1], '0');
  const hw = v4l2Args(req, { inputFormat: 'mjpeg', encoder: 'h264_v4l2m2m' }).video;
  assert.equal(hw[1], 'h264_v4l2m2m');
  assert.equal(hw[hw.indexOf('-g') + 1], '15');
});

test('mode selection: stepwise sizes, raw fallback, and an unsupported size is a coded error', () => {
  assert.deepEqual(
    selectMode(parseFfmpegFormats(VIVID), { width: 320, height: 180 }, { m2mEncoder: false }),
    { inputFormat: 'yuyv422', encoder: 'libx264' },
  );
  assert.throws(
    () => selectMode(parseFfmpegFormats(USB_CAM), { width: 1920, height: 1080 }, { m2mEncoder: false }),
    (e: unknown) => e instanceof CameraError && e.code === 'ERR_CAMERA_MODE_UNSUPPORTED',
  );
  assert.throws(
    () => selectMode([], req, { m2mEncoder: false }),
    (e: unknown) => e instanceof CameraError && e.code === 'ERR_CAMERA_MODE_UNSUPPORTED',
  );
});

test('GOP is never longer than 2 s whatever is asked', () => {
  assert.equal(gopFrames(30, 1), 30);
  assert.equal(gopFrames(30, 5), 60);
  assert.equal(gopFrames(1, 0.1), 1);
});

test('discovery through a fake sysfs tree: capture nodes vs codec nodes', () => {
  const { dir, cleanup } = makeTempDir('lenscap-v4l2-');
  try {
    const cls = join(dir, 'class', 'video4linux');
    for (const [n, name] of [
      ['video0', 'UVC Camera (046d:0825)'],
      ['video10', 'bcm2835-codec-encode'],
      ['video2', 'vivid-000-vid-cap'],
      ['video11', 'bcm2835-codec-isp'],
    ] as const) {
      mkdirSync(join(cls, n), { recursive: true });
      writeFileSync(join(cls, n, 'name'), `${name}\n`);
    }
    mkdirSync(join(cls, 'v4l-subdev0'), { recursive: true });
    const devs = listVideoDevices(dir, '/dev');
    assert.deepEqual(
      devs.map((d) => d.path),
      ['/dev/video0', '/dev/video2', '/dev/video10', '/dev/video11'],
    );
    assert.deepEqual(
      captureDevices(devs).map((d) => d.path),
      ['/dev/video0', '/dev/video2'],
    );
    assert.deepEqual(
      devs.filter(isEncoderNode).map((d) => d.name),
      ['bcm2835-codec-encode'],
    );
    assert.deepEqual(listVideoDevices(join(dir, 'nowhere')), []);
  } finally {
    cleanup();
  }
});

function fakeRunner(out: string, calls: string[][] = []): Runner {
  return async (cmd, args) => {
    calls.push([cmd, ...args]);
    return { code: 1, out };
  };
}

test('driver: probes with ffmpeg (no shell), returns args, or a coded error per failure', async () => {
  const calls: string[][] = [];
  const d = createV4l2Driver({
    ffmpegPath: NOT_RUN,
    runner: fakeRunner(USB_CAM, calls),
    m2mEncoder: false,
    exists: () => true,
  });
  const args = await d.prepare(req);
  assert.deepEqual(calls[0], [
    NOT_RUN,
    '-hide_banner',
    '-f',
    'v4l2',
    '-list_formats',
    'all',
    '-i',
    '/dev/video0',
  ]);
  assert.match(args.describe, /mjpeg 640x480@15 libx264/);

  const code = async (opts: { out: string; exists: boolean }) => {
    const drv = createV4l2Driver({
      ffmpegPath: NOT_RUN,
      runner: fakeRunner(opts.out),
      m2mEncoder: false,
      exists: () => opts.exists,
    });
    try {
      await drv.prepare(req);
      return 'resolved';
    } catch (e) {
      return (e as CameraError).code;
    }
  };
  assert.equal(await code({ out: '', exists: false }), 'ERR_CAMERA_MISSING');
  assert.equal(
    await code({
      out: '[video4linux2,v4l2 @ 0x1] ioctl(VIDIOC_STREAMON): Device or resource busy',
      exists: true,
    }),
    'ERR_CAMERA_BUSY',
  );
  assert.equal(
    await code({ out: '/dev/video0: No such file or directory', exists: true }),
    'ERR_CAMERA_MISSING',
  );
  assert.equal(await code({ out: 'Not a video capture device.', exists: true }), 'ERR_CAMERA_PROBE');
  assert.equal(
    await code({ out: H264_CAM.replace(/640x480/g, '800x600'), exists: true }),
    'ERR_CAMERA_MODE_UNSUPPORTED',
  );
});

test('driver: a probe cut by its time bound is ERR_CAMERA_PROBE_TIMEOUT, not "no formats"', async () => {
  const seen: (number | undefined)[] = [];
  const d = createV4l2Driver({
    ffmpegPath: NOT_RUN,
    runner: async (_cmd, _args, opts) => {
      seen.push(opts?.timeoutMs);
      return { code: null, out: '[video4linux2,v4l2 @ 0x1] ', timedOut: true };
    },
    m2mEncoder: false,
    exists: () => true,
  });
  await assert.rejects(d.prepare(req), (e: CameraError) => {
    assert.equal(e.code, 'ERR_CAMERA_PROBE_TIMEOUT');
    assert.match(e.message, /\/dev\/video0.*30000 ms/);
    return true;
  });
  assert.deepEqual(seen, [30_000]);
});

test('driver: formats are probed once per device identity; warm() shares the probe; failures are not kept', async () => {
  let calls = 0;
  let out = USB_CAM;
  let id = 'node-1';
  const d = createV4l2Driver({
    ffmpegPath: NOT_RUN,
    runner: async () => {
      calls++;
      // Still in flight when the two prepares below are called (they are called before it resolves).
      await new Promise((r) => setImmediate(r));
      return { code: 1, out };
    },
    m2mEncoder: false,
    exists: () => true,
    identify: () => id,
  });
  d.warm?.(req);
  const [a, b] = await Promise.all([d.prepare(req), d.prepare(req)]);
  assert.equal(calls, 1, 'warm-up and two viewers share one probe');
  assert.equal(a.describe, b.describe);
  await d.prepare(req);
  assert.equal(calls, 1, 'a known device is not probed again');

  id = 'node-2'; // replugged: another device node behind the same path
  out = 'Device or resource busy';
  await assert.rejects(d.prepare(req), { code: 'ERR_CAMERA_BUSY' });
  assert.equal(calls, 2);
  out = H264_CAM;
  assert.match((await d.prepare(req)).describe, /h264 640x480@15 copy/);
  assert.equal(calls, 3, 'a failed probe is asked again');
});
