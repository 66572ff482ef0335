/**
 * What `lenscap-dev` prints at start for a board: the dev cloud's stable default ports, and a
 * complete agent.json (broker URL, MQTT version, state dir, camera driver) that a camera provisioned
 * against this dev cloud runs with as is. Pure: no I/O.
 * Must never put a key, token or certificate into the printed config (the camera's identity comes
 * from `lenscap provision`, into its state dir).
 */

/**
 * Fixed by default so a camera's saved renewal URL (provisioning origin), the broker URL in its
 * agent.json and the viewer page's origin survive a restart of the dev cloud. 0 = any free port.
 */
export const DEV_PORTS = { provisioning: 18443, broker: 18883, page: 18080 } as const;

export interface BoardConfigInput {
  brokerUrl: string;
  brokerKind: 'aedes' | 'mosquitto';
  stateDir: string;
  cameraDriver: 'v4l2' | 'testpattern' | 'auto';
  /** Origins of the viewer page allowed to call the gate. */
  pageUrl?: string;
}

export function boardAgentJson(i: BoardConfigInput): Record<string, unknown> {
  return {
    version: 2,
    stateDir: i.stateDir,
    log: { level: 'info' },
    camera:
      i.cameraDriver === 'v4l2'
        ? { driver: 'v4l2', device: '/dev/video0', width: 640, height: 360, fps: 15 }
        : { driver: i.cameraDriver },
    gate: { host: '0.0.0.0', port: 8443, tls: true },
    stream: { mode: 'on-demand' },
    cloud: {
      url: i.brokerUrl,
      // aedes (the default) speaks MQTT 3.1.1 only; saying so skips the agent's one fall-back.
      protocolVersion: i.brokerKind === 'aedes' ? 4 : 5,
    },
  };
}
