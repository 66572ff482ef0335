/**
 * Encoder arguments shared by every camera driver: H.264 at a short GOP so a joining viewer waits
 * at most `gopSeconds` for a keyframe. Pure functions; no I/O.
 */
export type Encoder = 'copy' | 'h264_v4l2m2m' | 'libx264';

export function gopFrames(fps: number, gopSeconds: number): number {
  // Never longer than 2 s whatever config says: joins wait for the next keyframe.
  return Math.max(1, Math.round(fps * Math.min(gopSeconds, 2)));
}

export function encoderArgs(enc: Encoder, fps: number, gopSeconds: number, bitrateKbps: number): string[] {
  if (enc === 'copy') return ['-c:v', 'copy'];
  const g = String(gopFrames(fps, gopSeconds));
  const rate = ['-b:v', `${bitrateKbps}k`, '-maxrate', `${bitrateKbps}k`, '-bufsize', `${bitrateKbps}k`];
  if (enc === 'h264_v4l2m2m') return ['-c:v', 'h264_v4l2m2m', '-pix_fmt', 'yuv420p', '-g', g, ...rate];
  return [
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-pix_fmt',
    'yuv420p',
    '-g',
    g,
    '-keyint_min',
    g,
    '-sc_threshold',
    '0',
    ...rate,
  ];
}
