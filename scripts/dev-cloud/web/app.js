// The viewer page's logic: pick a demo user, list their cameras (online from the retained MQTT
// state), watch one (grant from the dev cloud → HTTP-FLV from the camera's gate with the grant in
// the Authorization header, renewed before expiry), replay the incident, and show security events
// and telemetry as they arrive over server-sent events. Never puts a grant in a URL or on screen whole.
/* global mpegts */
'use strict';

const RENEW_BEFORE_S = 20;
const $ = (id) => document.getElementById(id);
const state = {
  user: '',
  cameras: new Map(),
  player: null,
  grant: null,
  renewTimer: null,
  frames: 0,
  events: [],
  incident: null,
};

async function api(path, body) {
  const res = await fetch(
    path,
    body === undefined
      ? {}
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
  );
  const data = await res.json().catch(() => ({}));
  if (!res.ok)
    throw Object.assign(new Error(data.message || data.error || `HTTP ${res.status}`), {
      status: res.status,
      data,
    });
  return data;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const short = (token) => `${token.slice(0, 10)}…(${token.length} chars)`;

// ---- users and cameras ----------------------------------------------------------------------
async function loadUsers() {
  const users = await api('/api/users');
  for (const u of users) $('user').append(el('option', { value: u.id }, `${u.name} (${u.id})`));
  const fromUrl = new URLSearchParams(location.search).get('user');
  if (fromUrl) {
    $('user').value = fromUrl;
    await selectUser(fromUrl);
  }
}

async function selectUser(user) {
  stopWatching('user changed');
  state.user = user;
  state.cameras.clear();
  if (user)
    for (const c of await api(`/api/cameras?user=${encodeURIComponent(user)}`))
      state.cameras.set(c.serial, c);
  renderCameras();
}

function renderCameras() {
  const ul = $('cameras');
  ul.replaceChildren();
  if (!state.user) return ul.append(el('li', { class: 'muted' }, 'Pick a user.'));
  if (state.cameras.size === 0) return ul.append(el('li', { class: 'muted' }, 'No cameras.'));
  for (const c of state.cameras.values()) {
    ul.append(
      el(
        'li',
        { 'data-serial': c.serial, 'data-online': String(c.online) },
        el('span', { class: `dot ${c.online ? 'online' : ''}`, title: c.online ? 'online' : 'offline' }),
        el('b', {}, c.serial),
        el('span', { class: 'muted' }, c.label && c.label !== c.serial ? c.label : ''),
        el(
          'button',
          { 'data-testid': `watch-${c.serial}`, onclick: () => watch(c.serial).catch(showPlayError) },
          'Watch',
        ),
        // Push through the relay, sealed to this user's key (sealed.html, same keys in IndexedDB).
        el(
          'a',
          {
            href: `/sealed.html?user=${encodeURIComponent(state.user)}&serial=${encodeURIComponent(c.serial)}&push=1`,
            target: '_blank',
            'data-testid': `sealed-${c.serial}`,
          },
          'sealed via relay',
        ),
      ),
    );
  }
}

// ---- watching ---------------------------------------------------------------------------------
function showPlayError(err) {
  $('play-status').textContent = `error: ${err.message}`;
  $('play-status').className = 'refused';
}

async function watch(serial) {
  stopWatching('switch');
  $('play-status').textContent = 'asking the dev cloud for a grant…';
  $('play-status').className = '';
  const grant = await api('/api/grant', { user: state.user, serial });
  await prove(grant);
  play(grant);
}

/**
 * Owner-held camera: the grant names a key (jkt). When this browser holds it, the page plays over
 * the gate's WebSocket with the grant and a DPoP proof (htu ws://…) in the first message, made
 * fresh when the socket opens (owner.js firstMessageLoader). A proof by the user's simulated phone
 * (dev) was made for the HTTP URL, so that one travels as HTTP-FLV headers, as for a legacy camera.
 */
async function prove(grant) {
  const own = window.lenscapOwner && window.lenscapOwner.keys;
  if (grant.jkt && own && own.jkt === grant.jkt) {
    grant.wsUrl = grant.flvUrl.replace(/^http/, 'ws');
    grant.first = async () =>
      JSON.stringify({
        grant: grant.token,
        dpop: await window.lenscapKeys.dpopProof(own, { htm: 'GET', htu: grant.wsUrl, token: grant.token }),
      });
    grant.provedBy = "DPoP by this browser's key";
    grant.transport = 'WebSocket, grant + DPoP in the first message (lenscap-grant)';
  } else {
    grant.provedBy = grant.dpop ? `DPoP by ${grant.viewer}'s phone (dev)` : 'none (legacy camera)';
    grant.transport = `HTTP-FLV, Authorization${grant.dpop ? ' + DPoP' : ''} header`;
  }
}

function play(grant) {
  if (!window.mpegts || !mpegts.getFeatureList().mseLivePlayback)
    throw new Error('this browser cannot play HTTP-FLV (no MSE)');
  const old = state.player;
  state.grant = grant;
  $('grant-viewer').textContent = grant.viewer;
  $('grant-camera').textContent = grant.serial;
  $('proof-by').textContent = grant.provedBy || '—';
  if ($('transport')) $('transport').textContent = grant.transport || '—';
  state.ended = false;
  const url = grant.first ? grant.wsUrl : grant.flvUrl;
  $('play-status').textContent = `connecting to ${url}`;
  const player = mpegts.createPlayer(
    { type: 'flv', isLive: true, hasAudio: false, url },
    {
      ...(grant.first
        ? { customLoader: window.lenscapOwner.firstMessageLoader(grant.first) }
        : // The grant (and, owner-held, the phone's DPoP proof) in the request's headers.
          {
            headers: { Authorization: `Bearer ${grant.token}`, ...(grant.dpop ? { DPoP: grant.dpop } : {}) },
          }),
      enableStashBuffer: false,
      liveBufferLatencyChasing: true,
      lazyLoad: false,
    },
  );
  player.on(mpegts.Events.ERROR, (type, detail, info) => {
    const code = info && info.code ? ` ${info.code}` : '';
    $('play-status').textContent = `refused or failed: ${type} ${detail}${code}`;
    $('play-status').className = 'refused';
  });
  // The camera ended the session (a local reset, a removed member, the grant's exp): say so.
  player.on(mpegts.Events.LOADING_COMPLETE, () => {
    state.ended = true;
    $('play-status').textContent = 'stream ended by the camera';
    $('play-status').className = 'refused';
  });
  player.on(mpegts.Events.STATISTICS_INFO, (s) => {
    if (typeof s.decodedFrames === 'number') state.frames = Math.max(state.frames, s.decodedFrames);
  });
  const video = $('video');
  if (old) old.destroy();
  player.attachMediaElement(video);
  player.load();
  const p = player.play();
  if (p && p.catch) p.catch(() => {});
  state.player = player;
  $('stop').disabled = false;
  clearTimeout(state.renewTimer);
  const renewIn = Math.max(5, grant.exp - Date.now() / 1000 - RENEW_BEFORE_S) * 1000;
  state.renewTimer = setTimeout(() => renew(grant.serial), renewIn);
}

async function renew(serial) {
  try {
    const grant = await api('/api/grant', { user: state.user, serial });
    await prove(grant);
    play(grant); // a fresh grant opens a new session: the gate cuts the old one at its exp
  } catch (err) {
    showPlayError(err);
  }
}

function stopWatching(why) {
  clearTimeout(state.renewTimer);
  if (state.player) {
    state.player.destroy();
    state.player = null;
  }
  state.grant = null;
  state.frames = 0;
  $('grant-viewer').textContent = '—';
  $('grant-camera').textContent = '—';
  $('grant-expiry').textContent = '—';
  $('play-status').textContent = why ? `stopped (${why})` : 'idle';
  $('play-status').className = '';
  $('stop').disabled = true;
}

function tick() {
  const video = $('video');
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const frames = Math.max(state.frames, q ? q.totalVideoFrames : 0);
  $('frames').textContent = String(frames);
  if (state.grant) {
    const left = Math.max(0, Math.round(state.grant.exp - Date.now() / 1000));
    $('grant-expiry').textContent = `${left} s (renews ${RENEW_BEFORE_S} s before expiry)`;
    if (frames > 0 && video.currentTime > 0 && !state.ended) {
      $('play-status').textContent = `playing, ${video.currentTime.toFixed(1)} s`;
      $('play-status').className = 'ok';
    }
  }
}

// ---- the incident ---------------------------------------------------------------------------
async function replayIncident() {
  $('incident').disabled = true;
  $('incident-result').hidden = false;
  for (const id of ['incident-status', 'incident-reason', 'incident-frames']) $(id).textContent = '…';
  $('incident-event').textContent = 'waiting…';
  $('incident-event').className = '';
  try {
    const r = await api('/api/incident', {});
    $('incident-grant').textContent =
      `viewer ${r.viewer}, minted for ${r.mintedFor}, delivered to ${r.deliveredTo} (${short(r.token)})`;
    state.incident = { ...r, startedAt: performance.now(), startedWall: Date.now(), done: false };
    // Events can beat the HTTP answer: look at what already arrived first.
    for (const e of state.events) matchIncident(e);
    const res = await fetch(r.flvUrl, { headers: { Authorization: `Bearer ${r.token}` } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const isFlv = bytes.length >= 3 && bytes[0] === 0x46 && bytes[1] === 0x4c && bytes[2] === 0x56;
    let reason = '';
    try {
      const body = JSON.parse(new TextDecoder().decode(bytes));
      reason = body.error || body.reason || '';
    } catch {
      reason = '(no JSON body)';
    }
    $('incident-status').textContent = `HTTP ${res.status}`;
    $('incident-status').className = res.status === 403 ? 'refused' : 'ok';
    $('incident-reason').textContent = reason;
    $('incident-reason').className = reason === r.expect.reason ? 'refused' : '';
    $('incident-frames').textContent = isFlv
      ? `stream data received (${bytes.length} bytes)!`
      : `0 (0 media bytes)`;
    $('incident-frames').className = isFlv ? 'refused' : 'ok';
  } catch (err) {
    $('incident-status').textContent = `error: ${err.message}`;
  } finally {
    $('incident').disabled = false;
  }
}

function matchIncident(e) {
  const inc = state.incident;
  if (!inc || inc.done) return;
  const ev = e.event || {};
  if (e.serial !== inc.deliveredTo || ev.type !== 'grant_refused') return;
  // Only this attempt's event: same grant id when the camera reports one, else same reason, and
  // never one received before the button was pressed (the browser and dev cloud share a clock).
  if (ev.jti ? ev.jti !== inc.jti : ev.reason !== inc.expect.reason) return;
  if (Date.parse(e.receivedAt) < inc.startedWall - 1000) return;
  inc.done = true;
  const ms = Math.round(performance.now() - inc.startedAt);
  $('incident-event').textContent =
    `${e.serial}: ${ev.type} ${ev.reason}${ev.claimedAud ? `, claimed aud ${ev.claimedAud}` : ''} — received ${ms} ms after the attempt`;
  $('incident-event').className = 'refused';
  $('incident-event').dataset.reason = ev.reason || '';
}

// ---- events and telemetry -----------------------------------------------------------------
/**
 * A `grant_refused missing` the stack caused itself: npm start probes each gate without a grant
 * to prove it refuses. Matched by serial and time (2 s slack for the camera's clock and delivery).
 */
function isSelfCheck(serial, ev) {
  if (ev.type !== 'grant_refused' || ev.reason !== 'missing') return false;
  const at = Date.parse(ev.at || '');
  return (state.selfChecks || []).some(
    (c) => c.serial === serial && at >= Date.parse(c.from) - 2000 && at <= Date.parse(c.to) + 2000,
  );
}

function addEvent(e, fresh) {
  state.events.push(e);
  if (state.events.length > 50) state.events.shift();
  const ol = $('events');
  if (ol.firstElementChild && ol.firstElementChild.classList.contains('muted')) ol.replaceChildren();
  const ev = e.event || {};
  const time = new Date(e.receivedAt).toLocaleTimeString();
  const own = isSelfCheck(e.serial, ev);
  const li = el(
    'li',
    {
      class: `${fresh ? 'fresh' : ''}${own ? ' selfcheck' : ''}`.trim(),
      'data-serial': e.serial,
      'data-reason': ev.reason || '',
      ...(own ? { 'data-selfcheck': '1' } : {}),
    },
    `${time} ${own ? 'start-up check by the stack (expected): ' : ''}${e.serial} ${ev.type}${ev.reason ? ` ${ev.reason}` : ''}${ev.sub ? ` sub=${ev.sub}` : ''}${ev.claimedAud ? ` aud=${ev.claimedAud}` : ''}${ev.source ? ` via ${ev.source}` : ''}`,
  );
  ol.prepend(li);
  while (ol.children.length > 30) ol.lastElementChild.remove();
  if (fresh) matchIncident(e);
}

const telemetry = new Map();
function renderTelemetry() {
  const box = $('telemetry');
  box.replaceChildren();
  if (telemetry.size === 0) return box.append(el('p', { class: 'muted' }, 'none yet'));
  for (const [serial, t] of [...telemetry.entries()].sort()) {
    const parts = [];
    // A handful of figures a person reads at a glance; the full sample is in the API.
    const flat = (obj, prefix) => {
      for (const [k, v] of Object.entries(obj || {})) {
        if (v && typeof v === 'object' && !Array.isArray(v)) flat(v, `${prefix}${k}.`);
        else if (typeof v === 'number' || typeof v === 'boolean') parts.push([`${prefix}${k}`, v]);
      }
    };
    flat(t.telemetry, '');
    const skip = /(^at$|Bytes$|path$|load5|load15|^cost|\.cost|Ms$)/;
    const text = parts
      .filter(([k]) => !skip.test(k))
      .slice(0, 8)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(1) : v}`)
      .join('  ');
    box.append(
      el(
        'div',
        { class: 'cam', 'data-serial': serial },
        el('b', {}, serial),
        ` ${new Date(t.at).toLocaleTimeString()}`,
        el('br'),
        text,
      ),
    );
  }
}

function connectEvents() {
  const es = new EventSource('/api/stream');
  es.addEventListener('camera', (m) => {
    const c = JSON.parse(m.data);
    if (state.cameras.has(c.serial)) {
      state.cameras.set(c.serial, c);
      renderCameras();
    }
    if (c.telemetry) {
      telemetry.set(c.serial, { at: c.telemetryAt, telemetry: c.telemetry });
      renderTelemetry();
    }
  });
  es.addEventListener('telemetry', (m) => {
    const t = JSON.parse(m.data);
    telemetry.set(t.serial, t);
    renderTelemetry();
  });
  es.addEventListener('security', (m) => addEvent(JSON.parse(m.data), true));
}

async function init() {
  $('user').addEventListener('change', (e) => selectUser(e.target.value).catch(showPlayError));
  $('stop').addEventListener('click', () => stopWatching());
  $('incident').addEventListener('click', () => replayIncident());
  setInterval(tick, 250);
  const info = await api('/api/info').catch(() => ({}));
  state.selfChecks = Array.isArray(info.selfChecks) ? info.selfChecks : [];
  $('info').textContent = Object.entries(info)
    .filter(([k]) => k !== 'selfChecks')
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ');
  const past = await api('/api/events').catch(() => ({ events: [], telemetry: [] }));
  for (const e of past.events) addEvent(e, false);
  for (const t of past.telemetry) if (t.telemetry) telemetry.set(t.serial, t);
  renderTelemetry();
  connectEvents();
  await loadUsers();
}

window.lenscapApp = { reloadCameras: () => selectUser(state.user) };
init().catch(showPlayError);
