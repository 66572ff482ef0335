// The sealed viewer page: key pair, Worker, mpegts.js custom loader, status. Plain JS, no build.
/* global mpegts, Worker */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(location.search);
  const state = { opened: 0, refused: 0, decryptMs: 0, decryptBytes: 0, sealedForMe: undefined };
  window.lenscapSealed = state;

  // The viewer's key: X25519, private half non-extractable. Its public JWK is what the owner puts
  // in the membership for this viewer (window.lenscapSealed.publicJwk).
  const ready = crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']).then(async (keyPair) => {
    state.keyPair = keyPair;
    state.publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    $('kid').textContent = state.publicJwk.x.slice(0, 12) + '…';
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
  if (q.get('src')) state.start(q.get('src'));
})();
