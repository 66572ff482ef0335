/**
 * The rooms map of docs/architecture.md as rules, checked by `npm run lint` (depcruise).
 * A rule here names a room's "must never" from that table; change both together.
 * Rooms that later issues add are named already (owner/, sealing/, events/, uploads/, privacy/,
 * sessions/) so their code lands under rules that were agreed before it was written.
 */

// Network, broker and media libraries: what the decision rooms must never reach.
const NETWORK_AND_MEDIA = [
  '^node:(http|https|http2|net|tls|dgram|child_process)$',
  '^(http|https|http2|net|tls|dgram|child_process)$',
  '^node_modules/(mqtt|ws|node-media-server|fluent-ffmpeg|@ffmpeg-installer)/',
];
// The rooms that move media or speak to the network.
const MEDIA_ROOMS = '^agent/(gate|stream|push|events|uploads|cloud)/|^agent/(controller|media)[.]ts$';
// Contracts every room may use (docs/architecture.md, "Shared contracts").
const SHARED = [
  '^agent/(errors|clock|log|state-layout|redact|service)[.]ts$',
  '^agent/grants/(reasons|types)[.]ts$',
  '^agent/audit/events[.]ts$',
  // Each room's closed error-code list: data, importing nothing; errors.ts unions them.
  '^agent/[a-z-]+/codes[.]ts$',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Rooms form a one-way graph; a cycle is two rooms that should be one, or a missing interface.',
      from: {},
      // A cycle made only of `import type` edges does not exist at run time (scripts/dev-cloud's
      // cloud.ts ↔ server.ts share an interface that way); value cycles are what break start order.
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'drivers-import-no-agent',
      severity: 'error',
      comment: 'drivers/ is hardware behind one interface each; it knows nothing of the agent.',
      from: { path: '^drivers/' },
      to: { path: '^(agent|scripts|test|bench|harness)/' },
    },
    {
      name: 'device-code-imports-no-scripts',
      severity: 'error',
      comment:
        'agent/ and drivers/ ship in the device bundle; scripts/ (dev cloud, build, QEMU) does not, and tests/benches/the harness never ship.',
      from: { path: '^(agent|drivers)/' },
      to: { path: '^(scripts|test|bench|harness)/' },
    },
    {
      name: 'tests-and-benches-share-only-the-harness',
      severity: 'error',
      comment:
        'test/ and bench/ never import each other: what both start (brokers, PKI, FLV client, agent runner, waits, incident runs) lives in harness/.',
      from: { path: '^(test|bench)/' },
      to: { path: '^(test|bench)/', pathNot: '^$1/' },
    },
    {
      name: 'harness-imports-no-tests-or-benches',
      severity: 'error',
      comment: 'harness/ sits below test/ and bench/ (both import it); it imports neither.',
      from: { path: '^harness/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'dev-tools-import-no-harness',
      severity: 'error',
      comment:
        'scripts/ and bin/ (the dev cloud, build, QEMU) run without the test harness; the harness uses them, not the other way round.',
      from: { path: '^(scripts|bin)/' },
      to: { path: '^(test|bench|harness)/' },
    },
    {
      name: 'decision-rooms-touch-no-network-or-media',
      severity: 'error',
      comment:
        'grants/, owner/, sealing/, privacy/ and sessions/ decide or hold state; they never touch HTTP, MQTT, processes or media.',
      from: { path: '^agent/(grants|owner|sealing|privacy|sessions)/' },
      to: { path: NETWORK_AND_MEDIA },
    },
    {
      name: 'trust-rooms-import-no-media-rooms',
      severity: 'error',
      comment: 'grants/, identity/, owner/ and sealing/ never import the gate, the stream or the cloud link.',
      from: { path: '^agent/(grants|identity|owner|sealing)/' },
      to: { path: MEDIA_ROOMS },
    },
    {
      name: 'identity-knows-no-media',
      severity: 'error',
      comment: 'identity/ (keys, certs, renewal, provisioning over HTTPS) never spawns or moves media.',
      from: { path: '^agent/identity/' },
      to: { path: '^node_modules/(mqtt|ws|node-media-server|fluent-ffmpeg|@ffmpeg-installer)/' },
    },
    {
      name: 'composition-root-imported-only-by-run',
      severity: 'error',
      comment:
        'controller.ts and media.ts are the composition root: only `lenscap run`, tests and benches start it.',
      from: { path: '^(agent|drivers|scripts)/', pathNot: '^agent/(cli/run|controller)[.]ts$' },
      to: { path: '^agent/(controller|media)[.]ts$' },
    },
    {
      name: 'config-reads-only-itself',
      severity: 'error',
      comment: 'agent/config/ is the one schema; it depends on no service room.',
      from: { path: '^agent/config/' },
      to: { path: '^(agent|drivers)/', pathNot: ['^agent/config/', '^agent/errors[.]ts$'] },
    },
    {
      name: 'shared-contracts-import-no-rooms',
      severity: 'error',
      comment:
        'The shared contracts sit below every room; they import only each other and the config schema.',
      from: { path: SHARED },
      to: { path: '^(agent|drivers)/', pathNot: [...SHARED, '^agent/config/'] },
    },
    {
      name: 'storage-uses-node-only',
      severity: 'error',
      comment: 'agent/storage/ is crash-safe file replacement: node built-ins only.',
      from: { path: '^agent/storage/' },
      to: { path: '^(agent|drivers)/', pathNot: ['^agent/storage/', '^agent/errors[.]ts$'] },
    },
    {
      name: 'audit-is-below-the-rooms',
      severity: 'error',
      comment:
        'agent/audit/ records what rooms decide; it imports no room (shared contracts and storage only).',
      from: { path: '^agent/audit/' },
      to: { path: '^(agent|drivers)/', pathNot: ['^agent/audit/', '^agent/storage/', ...SHARED] },
    },
    {
      name: 'quiet-rooms-stay-out-of-trust-and-media',
      severity: 'error',
      comment: 'telemetry/ and systemd/ observe; they never reach grants, identity or media rooms.',
      from: { path: '^agent/(telemetry|systemd)/' },
      to: { path: ['^agent/(grants|identity|owner|sealing|gate|stream|push|cloud|events|uploads)/'] },
    },
    {
      name: 'stream-does-not-reach-the-gate',
      severity: 'error',
      comment: 'The gate uses the stream, never the other way round (the gate is the only media port).',
      from: { path: '^agent/(stream|push|events|uploads)/' },
      to: { path: '^agent/gate/' },
    },
    {
      name: 'cloud-does-not-reach-media',
      severity: 'error',
      comment: 'The cloud link carries commands; media rooms register into it, it never imports them.',
      from: { path: '^agent/cloud/' },
      to: { path: '^agent/(gate|stream|push|events|uploads)/' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a missing dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: '^node_modules' },
    exclude: { path: '^(dist|[.]lenscap|[.]qemu-cache|[.]scratch)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mjs', '.js', '.cjs', '.json', '.d.ts'],
    },
    moduleSystems: ['es6', 'cjs'],
    builtInModules: { add: [] },
  },
};
