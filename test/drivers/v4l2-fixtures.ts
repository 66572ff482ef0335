/** What the V4L2 driver tests share: vivid's `-list_formats` answer and a default capture request. */
import type { CameraRequest } from '../../drivers/camera/types.ts';

export const VIVID = `
[video4linux2,v4l2 @ 0x2] Raw       :     yuyv422 :           YUYV 4:2:2 : {16-1920, 2}x{16-1080, 2}
[video4linux2,v4l2 @ 0x2] Raw       :     yuv420p :     Planar YUV 4:2:0 : {16-1920, 2}x{16-1080, 2}`;

export const req: CameraRequest = {
  device: '/dev/video0',
  width: 640,
  height: 480,
  fps: 15,
  gopSeconds: 1,
  bitrateKbps: 1500,
  label: 'x',
  color: 'white',
};
