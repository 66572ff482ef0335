// The sealed viewer page: key pair (the user's from IndexedDB with ?user=), Worker, mpegts.js
// custom loader, status, and the push request (?push=1) or a look at the relay's copy (?relay=1).
// Plain JS, no build. Must never export the private key: the Worker gets the CryptoKey handle.
/* global mpegts, Worker */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(location.search);
  const state = { opened: 0, refused: 0, decryptMs: 0, decryptBytes: 0, sealedForMe: undefined };
  window.lenscapSealed = state;

  // The viewer's key: X25519, private half non-extractable. With ?user=U it is U's key from this
  // browser's IndexedDB (keys.js) — the one the owner put in the membership, the same the main page
  // registered; without, a key made for this page view only. Its public JWK: state.publicJwk.
  const user = q.get('user');
  const ready = (
    user
      ? window.lenscapKeys.loadOrCreate(user).then((k) => {
          state.keys = k;
          return k.hpke;
        })
      : crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])
  ).then(async (keyPair) => {
    state.keyPair = keyPair;
    state.publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    $('kid').textContent = state.keys
      ? `${user}'s key ${state.keys.kid.slice(0, 12)}… (IndexedDB, non-extractable)`
      : `${state.publicJwk.x.slice(0, 12)}… (this page view only)`;
    return keyPair;
  });
  state.ready = ready.then(() => true);

  class SealedLoader extends mpegts.BaseLoader {
    constructor() {
      super('lenscap-sealed-loader');
      this._received = 0;
      this._worker = null;
    }
    open(dataSource) {
      this._status = mpegts.LoaderStatus.kConnecting;
      const worker = new Worker('/sealed-worker.js');
      this._worker = worker;
      worker.onmessage = (ev) => {
        const m = ev.data;
        if (m.type === 'data') {
          this._status = mpegts.LoaderStatus.kBuffering;
          const start = this._received;
          this._received += m.chunk.byteLength;
          if (this._onDataArrival) this._onDataArrival(m.chunk, start, this._received);
        } else if (m.type === 'status') {
          state.sealedForMe = m.sealedForMe;
          $('seal').textContent =
            m.sealedForMe === true
              ? 'sealed for you'
              : m.sealedForMe === false
                ? 'sealed for someone else — nothing to show'
                : 'waiting for a keyframe…';
          $('seal').className = m.sealedForMe === false ? 'refused' : 'ok';
        } else if (m.type === 'counters') {
          Object.assign(state, {
            opened: m.opened,
            refused: m.refused,
            decryptMs: m.decryptMs,
            decryptBytes: m.decryptBytes,
          });
          $('opened').textContent = String(m.opened);
        } else if (m.type === 'error') {
          state.error = m.msg;
          this._status = mpegts.LoaderStatus.kError;
        }
      };
      ready.then((keyPair) =>
        worker.postMessage({ type: 'init', url: dataSource.url, serial: q.get('serial'), keyPair }),
      );
    }
    abort() {
      if (this._worker) this._worker.terminate();
      this._worker = null;
      this._status = mpegts.LoaderStatus.kComplete;
    }
  }

  function frames() {
    const v = $('video');
    const p = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return p ? p.totalVideoFrames : 0;
  }
  setInterval(() => {
    state.decoded = frames();
    $('frames').textContent = String(state.decoded);
  }, 250);

  // Starts playing a relay's HTTP-FLV URL (also from ?src=); the page's key is ready first.
  state.start = function (src) {
    if (!src || !mpegts.isSupported() || state.player) return false;
    const player = mpegts.createPlayer(
      { type: 'flv', isLive: true, hasAudio: false, url: src },
      {
        customLoader: SealedLoader,
        enableWorker: false,
        enableStashBuffer: false,
        liveBufferLatencyChasing: true,
      },
    );
    player.attachMediaElement($('video'));
    player.load();
    const p = player.play();
    if (p && p.catch) p.catch(() => undefined);
    state.player = player;
    return true;
  };

  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${data.error || `HTTP ${res.status}`}: ${data.message || ''}`);
    return data;
  }
  const pushStatus = (text, cls = '') => {
    $('push-status').textContent = text;
    $('push-status').className = cls;
  };

  // Asks the camera, through the dev cloud, to push a stream sealed to this user's key: a push
  // grant bound to the user's signing key, proved here (DPoP, htm PUSH) and relayed in
  // cmd/stream.start; then plays the relay's copy.
  state.push = async function () {
    await ready;
    if (!state.keys) throw new Error('open this page with ?user=<you>');
    const serial = q.get('serial');
    pushStatus('asking for a push grant…');
    const g = await post('/api/push', { user, serial });
    const dpop = await window.lenscapKeys.dpopProof(state.keys, { htm: g.htm, htu: g.htu, token: g.token });
    await post('/api/push/start', { serial, token: g.token, dpop });
    pushStatus(`camera pushing to the relay, sealed to ${user}'s key`, 'ok');
    state.start(g.flvUrl);
  };
  // Watches whatever the relay carries for the camera (as a relay that misroutes would hand it out).
  state.watchRelay = async function () {
    await ready;
    const r = await fetch(`/api/relay?serial=${encodeURIComponent(q.get('serial'))}`).then((x) => x.json());
    pushStatus(`watching the relay's copy of ${q.get('serial')}`);
    state.start(r.flvUrl);
  };
  const fail = (err) => pushStatus(`error: ${err.message}`, 'refused');
  $('push').addEventListener('click', () => state.push().catch(fail));
  $('watch-relay').addEventListener('click', () => state.watchRelay().catch(fail));
  if (q.get('src')) state.start(q.get('src'));
  else if (q.get('push') === '1') state.push().catch(fail);
  else if (q.get('relay') === '1') state.watchRelay().catch(fail);
})();
