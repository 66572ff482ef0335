/**
 * The V4L2 camera: finds capture devices through sysfs, reads what a device offers from ffmpeg's
 * `-list_formats all`, and picks the cheapest way to H.264 — the device's own H.264 copied as is,
 * else MJPEG/YUYV through the hardware encoder (h264_v4l2m2m) when the board has one, else
 * libx264 ultrafast/zerolatency. Never opens the device for capture itself (ffmpeg does), never
 * runs a shell, never reuses a probe for a device node that was replaced (replug, other camera).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encoderArgs, type Encoder } from './encoder.ts';
import {
  CameraError,
  type CameraDriver,
  type CameraRequest,
  type CaptureArgs,
  type Runner,
} from './types.ts';

export type PixelFormat = 'h264' | 'mjpeg' | 'yuyv422' | string;

export interface DeviceFormat {
  format: PixelFormat;
  compressed: boolean;
  /** Discrete sizes, e.g. ['640x480']; empty with `stepwise` set means any size in range. */
  sizes: string[];
  stepwise?: { minW: number; maxW: number; minH: number; maxH: number };
}

export interface VideoDevice {
  /** /dev/videoN */
  path: string;
  /** sysfs `name` (driver card name). */
  name: string;
}

/** Video capture devices under `<sysfsRoot>/class/video4linux`, excluding codec (m2m) nodes. */
export function listVideoDevices(sysfsRoot = '/sys', devRoot = '/dev'): VideoDevice[] {
  const dir = join(sysfsRoot, 'class', 'video4linux');
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => /^video\d+$/.test(n))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  } catch {
    return [];
  }
  return names.map((n) => ({ path: join(devRoot, n), name: readName(join(dir, n)) }));
}

function readName(devDir: string): string {
  try {
    return readFileSync(join(devDir, 'name'), 'utf8').trim();
  } catch {
    return '';
  }
}

/** A codec node (e.g. bcm2835-codec-encode) means the board has a hardware H.264 encoder. */
export function isEncoderNode(d: VideoDevice): boolean {
  return /enc/i.test(d.name) && /codec|m2m|enc/i.test(d.name);
}

export function captureDevices(devs: VideoDevice[]): VideoDevice[] {
  return devs.filter((d) => !/codec|m2m|isp/i.test(d.name));
}

/** Parses `ffmpeg -f v4l2 -list_formats all -i <dev>` output. */
export function parseFfmpegFormats(out: string): DeviceFormat[] {
  const formats: DeviceFormat[] = [];
  for (const line of out.split('\n')) {
    const m = /(Raw|Compressed)\s*:\s*(\S+)\s*:\s*[^:]*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, kind, format, sizesText] = m as unknown as [string, string, string, string];
    const step = /\{(\d+)-(\d+),\s*\d+\}x\{(\d+)-(\d+),\s*\d+\}/.exec(sizesText);
    const f: DeviceFormat = {
      format,
      compressed: kind === 'Compressed',
      sizes: step
        ? []
        : sizesText
            .trim()
            .split(/\s+/)
            .filter((s) => /^\d+x\d+$/.test(s)),
    };
    if (step)
      f.stepwise = {
        minW: Number(step[1]),
        maxW: Number(step[2]),
        minH: Number(step[3]),
        maxH: Number(step[4]),
      };
    formats.push(f);
  }
  return formats;
}

function supportsSize(f: DeviceFormat, w: number, h: number): boolean {
  if (f.stepwise)
    return w >= f.stepwise.minW && w <= f.stepwise.maxW && h >= f.stepwise.minH && h <= f.stepwise.maxH;
  return f.sizes.includes(`${w}x${h}`);
}

export interface ModeChoice {
  inputFormat: PixelFormat;
  encoder: Encoder;
}

/**
 * Native H.264 copy, else a raw/MJPEG format through the hardware encoder when present, else
 * libx264. A size the device does not offer in any usable format is ERR_CAMERA_MODE_UNSUPPORTED.
 */
export function selectMode(
  formats: DeviceFormat[],
  req: Pick<CameraRequest, 'width' | 'height'>,
  hw: { m2mEncoder: boolean },
): ModeChoice {
  const fits = formats.filter((f) => supportsSize(f, req.width, req.height));
  const h264 = fits.find((f) => f.format === 'h264');
  if (h264) return { inputFormat: 'h264', encoder: 'copy' };
  // MJPEG first: less USB bandwidth at the same size; decoding it is cheap next to encoding.
  const src =
    fits.find((f) => f.format === 'mjpeg') ??
    fits.find((f) => f.format === 'yuyv422') ??
    fits.find((f) => !f.compressed);
  if (!src) {
    const offered = formats
      .map((f) => `${f.format}:${f.stepwise ? 'stepwise' : f.sizes.join(',')}`)
      .join(' ');
    throw new CameraError(
      'ERR_CAMERA_MODE_UNSUPPORTED',
      `no usable format at ${req.width}x${req.height} (device offers ${offered || 'nothing'})`,
    );
  }
  return { inputFormat: src.format, encoder: hw.m2mEncoder ? 'h264_v4l2m2m' : 'libx264' };
}

export function v4l2Args(req: CameraRequest, mode: ModeChoice): CaptureArgs {
  return {
    input: [
      '-f',
      'v4l2',
      '-input_format',
      mode.inputFormat,
      '-video_size',
      `${req.width}x${req.height}`,
      '-framerate',
      String(req.fps),
      '-i',
      req.device,
    ],
    video: encoderArgs(mode.encoder, req.fps, req.gopSeconds, req.bitrateKbps),
    describe: `v4l2 ${req.device} ${mode.inputFormat} ${req.width}x${req.height}@${req.fps} ${mode.encoder}`,
  };
}

/**
 * How long a format probe may take. ffmpeg needs seconds just to start on a loaded or emulated
 * board (about 5 s under QEMU's arm64 emulation), and a probe cut short reads as "no formats":
 * the 5 s that used to be here left a QEMU camera retrying forever.
 */
export const PROBE_TIMEOUT_MS = 30_000;

export interface V4l2Options {
  ffmpegPath: string;
  runner: Runner;
  /** Whether ffmpeg lists h264_v4l2m2m AND the board has an encoder node. */
  m2mEncoder: boolean;
  exists?: (path: string) => boolean;
  /** Default PROBE_TIMEOUT_MS. */
  probeTimeoutMs?: number;
  /**
   * Identity of the device node (default: rdev, inode and ctime from stat): formats are probed
   * once per identity, so a replugged or different camera is probed again. `undefined` = unknown,
   * probe every time.
   */
  identify?: (path: string) => string | undefined;
}

function statIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.rdev}:${st.ino}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

export function createV4l2Driver(opts: V4l2Options): CameraDriver {
  const exists = opts.exists ?? existsSync;
  const identify = opts.identify ?? statIdentity;
  const timeoutMs = opts.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
  // One entry per device path; an in-flight probe is shared, so a warm-up and the first viewer
  // never run two probes. Failed probes are forgotten (the next prepare asks the device again).
  const probes = new Map<string, { id: string; formats: Promise<DeviceFormat[]> }>();

  async function probe(device: string): Promise<DeviceFormat[]> {
    const { out, timedOut } = await opts.runner(
      opts.ffmpegPath,
      ['-hide_banner', '-f', 'v4l2', '-list_formats', 'all', '-i', device],
      { timeoutMs },
    );
    if (/Device or resource busy/i.test(out))
      throw new CameraError('ERR_CAMERA_BUSY', `${device} is busy (another process holds it)`);
    if (/No such file or directory/i.test(out))
      throw new CameraError('ERR_CAMERA_MISSING', `${device} vanished`);
    const formats = parseFfmpegFormats(out);
    if (formats.length > 0) return formats;
    if (timedOut)
      throw new CameraError(
        'ERR_CAMERA_PROBE_TIMEOUT',
        `format probe of ${device} did not finish within ${timeoutMs} ms`,
      );
    throw new CameraError(
      'ERR_CAMERA_PROBE',
      `${device} reported no capture formats (not a capture device?)`,
    );
  }

  function formatsOf(device: string): Promise<DeviceFormat[]> {
    const id = identify(device);
    const known = probes.get(device);
    if (id !== undefined && known && known.id === id) return known.formats;
    const formats = probe(device);
    if (id === undefined) {
      probes.delete(device);
      return formats;
    }
    const entry = { id, formats };
    probes.set(device, entry);
    formats.catch(() => {
      if (probes.get(device) === entry) probes.delete(device);
    });
    return formats;
  }

  return {
    name: 'v4l2',
    async prepare(req) {
      if (!exists(req.device)) throw new CameraError('ERR_CAMERA_MISSING', `${req.device} does not exist`);
      const formats = await formatsOf(req.device);
      return v4l2Args(req, selectMode(formats, req, { m2mEncoder: opts.m2mEncoder }));
    },
    warm(req) {
      if (!exists(req.device)) return;
      formatsOf(req.device).catch(() => undefined);
    },
  };
}
