// The page's owner-held panel: this browser's keys for the signed-in user (keys.js, IndexedDB,
// non-extractable), registering their PUBLIC halves with the dev cloud's directory, claiming a
// camera with its label code (the proof is computed here: the code never leaves the page), the
// members of a camera and adding or removing one (the page signs the membership with the owner's
// key; the cloud only relays it), transferring ownership to another user's key (signed by the
// current owner's key), and the incident "a confused cloud adds mallory". Before it signs a key the
// cloud's directory handed over, the page shows that key's short code and waits for the owner to
// confirm it matches the code on the other user's own screen (a swapped key shows another code).
// Must never send a private key or the claim code to the cloud, nor sign a directory key unconfirmed.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const K = window.lenscapKeys;
  const st = { user: '', keys: null, events: [], confused: null };
  window.lenscapOwner = st;

  async function api(path, body) {
    const res = await fetch(
      path,
      body === undefined
        ? {}
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    const data = await res.json().catch(() => ({}));
    if (!res.ok)
      throw Object.assign(new Error(`${data.error || `HTTP ${res.status}`}: ${data.message || ''}`), {
        status: res.status,
        data,
      });
    return data;
  }
  const say = (id, text, cls = '') => {
    $(id).textContent = text;
    $(id).className = cls;
  };
  const short = (t) => `${String(t).slice(0, 10)}…`;

  // ---- keys ----------------------------------------------------------------------------------
  st.selectUser = async function (user) {
    st.user = user;
    st.keys = null;
    say('my-jkt', '—');
    say('my-kid', '—');
    say('my-code', '—');
    say('keys-state', user ? 'opening IndexedDB…' : 'pick a user');
    if (!user) return;
    const keys = await K.loadOrCreate(user);
    if (st.user !== user) return;
    st.keys = keys;
    say('my-jkt', keys.jkt);
    say('my-kid', keys.kid);
    say('my-code', K.keyCode(keys.jkt));
    say(
      'keys-state',
      `${keys.created ? 'made now' : `kept since ${keys.createdAt}`} · non-extractable, in this browser's IndexedDB`,
      'ok',
    );
    // Only public halves go to the cloud's directory (so an owner can add this user).
    await api('/api/keys', { user, jwk: keys.jwk, hpke: keys.hpkeJwk });
    st.ready = true;
    if ($('member-serial').value) await showMembers().catch(() => undefined);
  };

  // ---- claim ---------------------------------------------------------------------------------
  async function claim() {
    const keys = st.keys;
    if (!keys) throw new Error('pick a user first');
    const serial = $('member-serial').value.trim();
    say('claim-status', `asking ${serial} for a claim nonce…`);
    const { nonce } = await api('/api/claim/nonce', { serial });
    const proof = await K.claimProof($('claim-code').value, { jkt: keys.jkt, serial, nonce });
    const membership = await K.signMembership(keys, {
      serial,
      epoch: nonce,
      version: 1,
      members: [K.member(keys, 'owner')],
    });
    const r = await api('/api/claim', { serial, nonce, proof, membership });
    $('claim-code').value = '';
    say('claim-status', `claimed: ${serial} is owned by ${r.owner} (membership v${r.version})`, 'ok');
    await showMembers();
    if (window.lenscapApp) await window.lenscapApp.reloadCameras();
  }

  // ---- members -------------------------------------------------------------------------------
  async function current(serial) {
    const rec = await api(`/api/membership?serial=${encodeURIComponent(serial)}`);
    return K.payloadOf(rec.jws);
  }

  async function showMembers() {
    const serial = $('member-serial').value.trim();
    const ul = $('members');
    ul.replaceChildren();
    let p;
    try {
      p = await current(serial);
    } catch (err) {
      ul.append(
        Object.assign(document.createElement('li'), { className: 'muted', textContent: err.message }),
      );
      return;
    }
    const mine = st.keys ? st.keys.jkt : '';
    const ownerJkt = await K.thumbprint(p.members.find((m) => m.role === 'owner').jwk);
    for (const m of p.members) {
      const jkt = await K.thumbprint(m.jwk);
      const li = document.createElement('li');
      li.dataset.sub = m.sub;
      li.dataset.role = m.role;
      li.dataset.code = K.keyCode(jkt);
      li.textContent = `${m.sub} (${m.role}) key ${K.keyCode(jkt)} ${short(jkt)}${jkt === mine ? ' — this browser' : ''} `;
      if (m.role !== 'owner' && ownerJkt === mine) {
        const b = document.createElement('button');
        b.textContent = 'Remove';
        b.dataset.testid = `remove-${m.sub}`;
        b.setAttribute('data-testid', `remove-${m.sub}`);
        b.onclick = () => changeMembers(serial, (ms) => ms.filter((x) => x.sub !== m.sub)).catch(showErr);
        li.append(b);
      }
      ul.append(li);
    }
    say(
      'members-version',
      `v${p.version}, signed by ${ownerJkt === mine ? 'this browser (owner)' : 'the owner'}`,
    );
    $('members-version').dataset.version = String(p.version);
    $('members-version').dataset.owner = p.members.find((m) => m.role === 'owner').sub;
  }

  /**
   * The cloud's directory says which key is `user`'s; a cloud that swaps it would get the owner to
   * sign the wrong key. Shows the key's short code and resolves true only if the owner confirms it
   * matches the code `user`'s own page shows under "Your keys".
   */
  function confirmKey(user, pub, what) {
    const code = K.keyCode(pub.jkt);
    $('confirm-box').hidden = false;
    say('confirm-text', `${what}: the cloud's directory says ${user}'s key is`);
    say('confirm-code', code);
    $('confirm-code').dataset.jkt = pub.jkt;
    $('confirm-code').title = pub.jkt;
    say('confirm-hint', `Sign only if ${user}'s own screen shows the same code under "Your keys".`);
    return new Promise((resolve) => {
      const done = (ok) => {
        $('confirm-yes').onclick = null;
        $('confirm-no').onclick = null;
        $('confirm-box').hidden = true;
        resolve(ok);
      };
      $('confirm-yes').onclick = () => done(true);
      $('confirm-no').onclick = () => done(false);
    });
  }

  /**
   * Signs the next membership with this browser's key (it must be the owner's) and relays it; once
   * the camera accepted it, says `accepted(version)` — one final status per action, so a transfer
   * never shows a passing "accepted" line before its own.
   */
  async function changeMembers(serial, edit, accepted = (v) => `membership v${v} accepted by ${serial}`) {
    const keys = st.keys;
    const p = await current(serial);
    const members = edit(p.members);
    const jws = await K.signMembership(keys, { serial, epoch: p.epoch, version: p.version + 1, members });
    await api('/api/membership', { serial, membership: jws });
    say('member-status', accepted(p.version + 1), 'ok');
    await showMembers();
  }

  async function addMember() {
    const serial = $('member-serial').value.trim();
    const user = $('member-user').value.trim();
    const role = $('member-role').value || 'viewer';
    // The directory is the cloud's: compare this fingerprint with the one on the other user's screen.
    const pub = await api(`/api/keys?user=${encodeURIComponent(user)}`);
    say('member-status', `adding ${user}: compare the key code with their screen…`);
    if (!(await confirmKey(user, pub, `Add ${user} to ${serial}`)))
      return say('member-status', `not added: the key code for ${user} was not confirmed`, 'refused');
    await changeMembers(serial, (ms) =>
      ms.filter((x) => x.sub !== user).concat([{ sub: user, role, jwk: pub.jwk, hpke: pub.hpke }]),
    );
  }

  /**
   * Transfer: the next membership, signed by this browser's (the current owner's) key, names
   * `user`'s directory key as owner; this user stays a viewer if asked. From then on only that key
   * signs memberships.
   */
  async function transfer() {
    const serial = $('member-serial').value.trim();
    const user = $('transfer-user').value.trim();
    const keep = $('transfer-keep').checked;
    const me = st.keys;
    if (!me) throw new Error('pick a user first');
    if (!user || user === me.user) throw new Error('name another user to transfer to');
    const pub = await api(`/api/keys?user=${encodeURIComponent(user)}`);
    say('member-status', `transferring ${serial} to ${user}: compare the key code with their screen…`);
    if (!(await confirmKey(user, pub, `Make ${user} the owner of ${serial}`)))
      return say('member-status', `not transferred: the key code for ${user} was not confirmed`, 'refused');
    await changeMembers(
      serial,
      (ms) =>
        ms
          .filter((x) => x.sub !== user && x.sub !== me.user)
          .concat(keep ? [K.member(me, 'viewer')] : [])
          .concat([{ sub: user, role: 'owner', jwk: pub.jwk, hpke: pub.hpke }]),
      () => `ownership of ${serial} transferred to ${user}`,
    );
  }

  // ---- live video over WebSocket, grant and DPoP proof in the first message ---------------------
  /**
   * An mpegts.js loader for the gate's `lenscap-grant` WebSocket path (a browser cannot put an
   * Authorization or DPoP header on a WebSocket): on open it sends `{"grant", "dpop"}` made by
   * `first()` — a fresh proof per connection, over `ws://host/live/<serial>.flv` — then hands the
   * binary FLV messages to the player. A refusal is one text message `{"error"}` and a close with
   * 4000 + the HTTP status: reported as an error with that status and reason, never as media.
   */
  st.firstMessageLoader = function (first) {
    const M = window.mpegts;
    return class FirstMessageLoader extends M.BaseLoader {
      static isSupported() {
        return typeof WebSocket !== 'undefined';
      }
      constructor() {
        super('lenscap-grant-websocket-loader');
        this._needStash = true;
        this._ws = null;
        this._received = 0;
        this._aborted = false;
        this.refusal = '';
      }
      open(dataSource) {
        const ws = new WebSocket(dataSource.url, ['lenscap-grant']);
        this._ws = ws;
        ws.binaryType = 'arraybuffer';
        this._status = M.LoaderStatus.kConnecting;
        const fail = (type, info) => {
          this._status = M.LoaderStatus.kError;
          if (this._onError) this._onError(type, info);
        };
        ws.onopen = () => {
          first().then(
            (msg) => {
              if (ws.readyState !== WebSocket.OPEN) return;
              ws.send(msg);
              this._status = M.LoaderStatus.kBuffering;
            },
            (err) => {
              ws.close();
              fail(M.LoaderErrors.EXCEPTION, { code: -1, msg: `no proof: ${err.message}` });
            },
          );
        };
        ws.onmessage = (m) => {
          if (typeof m.data === 'string') {
            try {
              this.refusal = JSON.parse(m.data).error || '';
            } catch {
              this.refusal = 'unreadable refusal';
            }
            return;
          }
          const from = this._received;
          this._received += m.data.byteLength;
          if (this._onDataArrival) this._onDataArrival(m.data, from, this._received);
        };
        ws.onclose = (c) => {
          if (this._aborted) return;
          if (c.code >= 4000)
            return fail(M.LoaderErrors.HTTP_STATUS_CODE_INVALID, {
              code: c.code - 4000,
              msg: c.reason || this.refusal,
            });
          this._status = M.LoaderStatus.kComplete;
          if (this._onComplete) this._onComplete(0, this._received - 1);
        };
        ws.onerror = () => undefined; // the close that follows says what happened
      }
      abort() {
        const ws = this._ws;
        if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) {
          this._aborted = true;
          ws.close();
        }
      }
      destroy() {
        if (this._ws) this.abort();
        this._ws = null;
        super.destroy();
      }
    };
  };

  // ---- the incident: a confused cloud adds mallory ------------------------------------------
  async function confusedCloud() {
    const serial = 'CAM-DEMO-1';
    $('confused').disabled = true;
    $('confused-result').hidden = false;
    for (const id of ['confused-binding', 'confused-membership', 'confused-status', 'confused-bytes'])
      say(id, '…');
    say('confused-event', 'waiting…');
    try {
      const startedWall = Date.now();
      st.confused = { startedWall, serial, done: {} };
      const r = await api('/api/confused-cloud', { serial, user: 'mallory' });
      const verdict = (x) => (x.accepted ? 'ACCEPTED (!)' : `refused ${x.code}`);
      say('confused-binding', verdict(r.binding), r.binding.accepted ? 'refused' : 'ok');
      say('confused-membership', verdict(r.membership), r.membership.accepted ? 'refused' : 'ok');
      st.confused.jti = r.jti;
      // Mallory presents the grant, with a proof by her own key when this browser holds it.
      const mk = await K.load('mallory');
      const headers = { Authorization: `Bearer ${r.token}` };
      if (mk) headers.DPoP = await K.dpopProof(mk, { htm: 'GET', htu: r.flvUrl, token: r.token });
      const res = await fetch(r.flvUrl, { headers });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const isFlv = bytes.length >= 3 && bytes[0] === 0x46 && bytes[1] === 0x4c && bytes[2] === 0x56;
      let reason = '';
      try {
        reason = JSON.parse(new TextDecoder().decode(bytes)).error || '';
      } catch {
        reason = '(no JSON body)';
      }
      say('confused-status', `HTTP ${res.status} ${reason}`, res.status === 403 ? 'ok' : 'refused');
      $('confused-status').dataset.reason = reason;
      say(
        'confused-bytes',
        isFlv ? `stream data received (${bytes.length} bytes)!` : '0 media bytes',
        isFlv ? 'refused' : 'ok',
      );
      $('confused-bytes').dataset.media = isFlv ? String(bytes.length) : '0';
      for (const e of st.events) matchConfused(e);
    } catch (err) {
      say('confused-status', `error: ${err.message}`, 'refused');
    } finally {
      $('confused').disabled = false;
    }
  }

  /** The camera's own reports of the attempt: the refused binding/membership and the refused grant. */
  function matchConfused(e) {
    const c = st.confused;
    const ev = e.event || {};
    if (!c || e.serial !== c.serial || Date.parse(e.receivedAt) < c.startedWall - 1000) return;
    const seen = (key, text) => {
      c.done[key] = text;
      say('confused-event', Object.values(c.done).join(' · '), 'refused');
      $('confused-event').dataset[key] = '1';
    };
    if (ev.type === 'grant_refused' && ev.reason === 'viewer_not_bound')
      seen('grant', `grant_refused viewer_not_bound${ev.sub ? ` sub=${ev.sub}` : ''}`);
    if (ev.type === 'membership_refused') seen('membership', `membership_refused ${ev.reason}`);
    if (ev.type === 'command_refused' && ev.reason === 'ERR_BINDING_OWNER_HELD')
      seen('binding', 'command_refused ERR_BINDING_OWNER_HELD');
  }

  function showErr(err) {
    say('member-status', `error: ${err.message}`, 'refused');
  }

  function init() {
    $('claim').addEventListener('click', () =>
      claim().catch((err) => say('claim-status', `refused: ${err.message}`, 'refused')),
    );
    $('member-add').addEventListener('click', () => addMember().catch(showErr));
    $('transfer').addEventListener('click', () => transfer().catch(showErr));
    $('member-serial').addEventListener('change', () => showMembers().catch(showErr));
    $('confused').addEventListener('click', () => confusedCloud());
    const es = new EventSource('/api/stream');
    es.addEventListener('security', (m) => {
      const e = JSON.parse(m.data);
      st.events.push(e);
      if (st.events.length > 100) st.events.shift();
      matchConfused(e);
      // The camera's own word that its owner or members changed: show the new state.
      const ev = e.event || {};
      if (
        e.serial === $('member-serial').value.trim() &&
        ['owner_claimed', 'membership_changed', 'owner_reset'].includes(ev.type)
      )
        setTimeout(() => showMembers().catch(() => undefined), 300);
    });
    $('user').addEventListener('change', (e) =>
      st.selectUser(e.target.value).catch((err) => say('keys-state', `error: ${err.message}`, 'refused')),
    );
    const fromUrl = new URLSearchParams(location.search).get('user');
    if (fromUrl) st.selectUser(fromUrl).catch((err) => say('keys-state', `error: ${err.message}`, 'refused'));
  }
  init();
})();
