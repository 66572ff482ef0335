// The page's Events panel (issue 16): the signed-in user's motion snapshots and clips as the
// cameras announced them on `lenscap/v1/<serial>/motion`, fetched SEALED from the dev cloud and
// opened HERE with the user's own X25519 key from IndexedDB (keys.js: non-extractable; the
// opener is the agent's own code, /artifacts.js). Snapshots are shown, a clip plays (fMP4 in a
// <video> through a blob URL). An artifact sealed to other keys reads "sealed for someone else"
// and shows nothing. Also "Wave at the camera" (the test pattern's motion hook) and the third
// incident: a cache that mixes up users hands another user's thumbnails and clips to this page.
// Must never send a key or a plaintext anywhere, nor show bytes that did not authenticate.
/* global Blob, Image */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const st = {
    user: '',
    keys: null,
    results: new Map(),
    mine: { listed: 0, opened: 0, decoded: 0, notForMe: 0, errors: 0 },
    cache: null,
    playing: null,
  };
  window.lenscapMotion = st;

  async function api(path, body) {
    const res = await fetch(
      path,
      body === undefined
        ? {}
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${data.error || `HTTP ${res.status}`}: ${data.message || ''}`);
    return data;
  }
  const say = (id, text, cls = '') => {
    $(id).textContent = text;
    $(id).className = cls;
  };
  const when = (ms) => new Date(ms).toLocaleTimeString();
  const kb = (n) => `${(n / 1024).toFixed(1)} kB`;

  /**
   * Fetches one sealed artifact and opens it with this browser's key. Cached per page-served URL
   * (the same id served by the correct listing and by the mixed-up cache is two fetches).
   */
  function open(item, keys) {
    const key = `${item.url}`;
    let p = st.results.get(key);
    if (!p) {
      p = (async () => {
        const res = await fetch(item.url);
        if (!res.ok) return { state: 'error', code: `HTTP ${res.status}` };
        const bytes = new Uint8Array(await res.arrayBuffer());
        const r = await window.lenscapArtifacts.openArtifact(bytes, keys.hpke, {
          serial: item.serial,
          id: item.id,
        });
        if (!r.ok)
          return { state: r.code === 'ERR_SEAL_NOT_FOR_YOU' ? 'not-for-you' : 'error', code: r.code };
        const blob = new Blob([r.plaintext], { type: item.kind === 'clip' ? 'video/mp4' : 'image/jpeg' });
        return { state: 'opened', url: URL.createObjectURL(blob), bytes: r.plaintext.length };
      })().catch((err) => ({ state: 'error', code: err.message }));
      st.results.set(key, p);
    }
    return p;
  }

  /** Renders `items` into `ul`, opening each; counts into `counts`. */
  async function render(ul, items, counts, keys, hint = '') {
    ul.replaceChildren();
    if (items.length === 0) {
      ul.append(Object.assign(document.createElement('li'), { className: 'muted', textContent: 'none yet' }));
      return;
    }
    counts.listed = items.length;
    await Promise.all(
      items.map(async (it) => {
        const li = document.createElement('li');
        li.dataset.id = it.id;
        li.dataset.kind = it.kind;
        li.dataset.serial = it.serial;
        li.dataset.state = 'opening';
        const mine = it.sealedTo.includes(keys.kid);
        const head = document.createElement('div');
        head.textContent =
          `${it.kind} · ${it.serial} · ${when(it.startedAt)}` +
          (it.kind === 'clip' ? ` · ${(it.durationMs / 1000).toFixed(1)} s` : '') +
          ` · ${kb(it.size)} sealed to ${it.sealedTo.length} key(s)${mine ? ', this browser’s among them' : ''}`;
        const status = document.createElement('div');
        status.className = 'seal';
        status.textContent = 'opening…';
        li.append(head, status);
        ul.append(li);
        const r = await open(it, keys);
        li.dataset.state = r.state;
        if (r.state === 'not-for-you') {
          counts.notForMe++;
          status.textContent = `sealed for someone else — nothing to show${hint}`;
          status.className = 'seal refused';
          return;
        }
        if (r.state === 'error') {
          counts.errors++;
          status.textContent = `not opened: ${r.code}`;
          status.className = 'seal refused';
          return;
        }
        counts.opened++;
        status.textContent = `sealed for you — opened in this browser (${kb(r.bytes)})`;
        status.className = 'seal ok';
        if (it.kind === 'snapshot') {
          const img = new Image();
          img.alt = `snapshot ${it.id}`;
          img.src = r.url;
          li.append(img);
          try {
            await img.decode();
            counts.decoded++;
            li.dataset.decoded = `${img.naturalWidth}x${img.naturalHeight}`;
          } catch {
            status.textContent += ' — but the image did not decode';
          }
        } else {
          const b = document.createElement('button');
          b.textContent = 'Play';
          b.setAttribute('data-testid', `play-${it.id}`);
          b.onclick = () => play(it, r.url);
          li.append(b);
        }
      }),
    );
  }

  function play(it, url) {
    const v = $('motion-video');
    st.playing = it.id;
    v.src = url;
    v.hidden = false;
    say('motion-playing', `${it.serial} clip ${it.id}`);
    const p = v.play();
    if (p && p.catch) p.catch((err) => say('motion-playing', `not played: ${err.message}`, 'refused'));
  }

  function showCounts() {
    const m = st.mine;
    say(
      'motion-counts',
      `${m.listed} listed · ${m.opened} opened · ${m.decoded} images decoded · ${m.notForMe} sealed for someone else`,
    );
    $('motion-counts').dataset.decoded = String(m.decoded);
  }

  let refreshing = Promise.resolve();
  st.refresh = function (force = false) {
    refreshing = refreshing.then(async () => {
      const user = st.user;
      if (!user || !st.keys) return;
      const r = await api(`/api/motion?user=${encodeURIComponent(user)}`);
      if (st.user !== user) return;
      const ids = r.items.map((i) => i.id).join(',');
      if (!force && ids === st.shown) return;
      st.shown = ids;
      st.mine = { listed: 0, opened: 0, decoded: 0, notForMe: 0, errors: 0 };
      // Your camera, but not your browser's key: sealed at capture to the membership of that moment.
      const hint =
        ' (this browser’s key was not in the camera’s membership at capture: claim it here or ask the owner to add you)';
      await render($('motion-list'), r.items, st.mine, st.keys, hint);
      showCounts();
      st.refreshed = (st.refreshed || 0) + 1;
    });
    return refreshing.catch((err) => say('motion-counts', `error: ${err.message}`, 'refused'));
  };

  async function selectUser(user) {
    st.user = user;
    st.keys = null;
    st.cache = null;
    st.shown = undefined;
    $('cache-result').hidden = true;
    $('motion-list').replaceChildren();
    $('motion-cameras').replaceChildren();
    if (!user) return;
    st.keys = await window.lenscapKeys.loadOrCreate(user);
    say('motion-kid', st.keys.kid);
    for (const c of await api(`/api/cameras?user=${encodeURIComponent(user)}`)) {
      const b = document.createElement('button');
      b.textContent = `Wave at ${c.serial}`;
      b.setAttribute('data-testid', `wave-${c.serial}`);
      b.onclick = () =>
        api('/api/motion/now', { serial: c.serial, seconds: 3 }).then(
          () =>
            say(
              'motion-wave',
              `motion in front of ${c.serial} for 3 s; the event arrives a few seconds after`,
              'ok',
            ),
          (err) => say('motion-wave', err.message, 'refused'),
        );
      const on = document.createElement('button');
      on.textContent = `Turn events on (${c.serial})`;
      on.setAttribute('data-testid', `events-on-${c.serial}`);
      on.onclick = () =>
        api('/api/events/switch', { user, serial: c.serial, enabled: true }).then(
          (r) =>
            say(
              'motion-wave',
              `${c.serial}: events ${r.status.enabled ? 'on' : 'off'}${r.status.running ? ', detecting' : ''}`,
              'ok',
            ),
          (err) => say('motion-wave', err.message, 'refused'),
        );
      $('motion-cameras').append(b, on);
    }
    await st.refresh();
    st.ready = true;
  }

  // ---- the third incident: a cache mixes up users' event thumbnails --------------------------
  st.cacheIncident = async function () {
    if (!st.keys) throw new Error('pick a user first');
    $('cache-incident').disabled = true;
    $('cache-result').hidden = false;
    try {
      const r = await api('/api/incident/events', { user: st.user });
      const owners = [...new Set(r.items.map((i) => `${i.owner}'s ${i.serial}`))].join(', ') || 'nobody';
      say(
        'cache-served',
        `${r.items.length} artifacts of ${owners} served to ${r.servedTo}`,
        r.items.length ? 'refused' : '',
      );
      $('cache-served').dataset.count = String(r.items.length);
      const counts = { listed: 0, opened: 0, decoded: 0, notForMe: 0, errors: 0 };
      await render($('cache-list'), r.items, counts, st.keys);
      st.cache = counts;
      say('cache-decoded', String(counts.decoded), counts.decoded === 0 ? 'ok' : 'refused');
      $('cache-decoded').dataset.decoded = String(counts.decoded);
      say(
        'cache-seal',
        counts.notForMe > 0 && counts.opened === 0
          ? `sealed for someone else — ${counts.notForMe} of ${r.items.length} refused by this browser's key`
          : `${counts.opened} opened, ${counts.notForMe} sealed for someone else`,
        counts.opened === 0 ? 'ok' : 'refused',
      );
    } finally {
      $('cache-incident').disabled = false;
    }
  };

  function init() {
    $('motion-refresh').addEventListener('click', () => st.refresh(true));
    $('cache-incident').addEventListener('click', () =>
      st.cacheIncident().catch((err) => say('cache-seal', `error: ${err.message}`, 'refused')),
    );
    const v = $('motion-video');
    const frames = () => (v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0);
    setInterval(() => {
      if (!st.playing) return;
      $('motion-frames').textContent = String(frames());
      $('motion-frames').dataset.readyState = String(v.readyState);
    }, 250);
    $('user').addEventListener('change', (e) =>
      selectUser(e.target.value).catch((err) => say('motion-counts', `error: ${err.message}`, 'refused')),
    );
    // Polled (cheap, and the page's two other scripts already hold an event stream each).
    setInterval(() => {
      if (st.keys) st.refresh();
    }, 3000);
    const fromUrl = new URLSearchParams(location.search).get('user');
    if (fromUrl) selectUser(fromUrl).catch((err) => say('motion-counts', `error: ${err.message}`, 'refused'));
  }
  init();
})();
