// A user's keys in this browser, as their phone app would hold them: an ECDSA P-256 signing key
// (memberships, DPoP proofs) and an X25519 key (what the camera seals live video to). Both are
// made by WebCrypto as NON-EXTRACTABLE and kept in IndexedDB as CryptoKey objects (the store keeps
// the key handle; the private bytes never reach JavaScript), so they survive reloads and restarts
// as long as the page's origin (scheme, host, port) stays the same. Also the signatures the page
// makes with them: RFC 7638 thumbprints, ES256 compact JWS, DPoP proofs (RFC 9449), memberships,
// and the claim proof (HMAC-SHA256 keyed by the label code, computed here: the code never leaves).
// Must never export a private key, and never send the claim code anywhere.
/* global indexedDB, btoa, atob */
'use strict';
(function () {
  const DB = 'lenscap-keys';
  const STORE = 'users';
  const enc = new TextEncoder();
  const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

  const b64u = (bytes) => {
    let s = '';
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const b64uJson = (o) => b64u(enc.encode(JSON.stringify(o)));
  const now = () => Math.floor(Date.now() / 1000);

  function openDb() {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  async function inStore(mode, fn) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req ? req.result : undefined);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  /** RFC 7638: SHA-256 over the required members in lexicographic order. */
  async function thumbprint(jwk) {
    const canonical =
      jwk.kty === 'EC'
        ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
        : `{"crv":"${jwk.crv}","kty":"OKP","x":"${jwk.x}"}`;
    return b64u(await crypto.subtle.digest('SHA-256', enc.encode(canonical)));
  }

  async function create(user) {
    // extractable = false: exportKey on a private key throws; only the public halves are exported.
    const signing = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ]);
    const hpke = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
    const s = await crypto.subtle.exportKey('jwk', signing.publicKey);
    const h = await crypto.subtle.exportKey('jwk', hpke.publicKey);
    const jwk = { kty: 'EC', crv: 'P-256', x: s.x, y: s.y };
    const hpkeJwk = { kty: 'OKP', crv: 'X25519', x: h.x };
    return {
      user,
      signing,
      hpke,
      jwk,
      hpkeJwk,
      jkt: await thumbprint(jwk),
      kid: await thumbprint(hpkeJwk),
      createdAt: new Date().toISOString(),
    };
  }

  const load = (user) => inStore('readonly', (s) => s.get(user));

  /** This browser's keys for `user`, made once; `created` says whether they are new. */
  async function loadOrCreate(user) {
    const had = await load(user);
    if (had) return { ...had, created: false };
    const fresh = await create(user);
    try {
      // add, not put: a second tab racing us keeps the first key pair, and so do we.
      await inStore('readwrite', (s) => s.add(fresh, user));
      return { ...fresh, created: true };
    } catch {
      return { ...(await load(user)), created: false };
    }
  }

  async function signJws(keys, header, payload) {
    const input = `${b64uJson(header)}.${b64uJson(payload)}`;
    // WebCrypto ECDSA signatures are IEEE P1363 (r || s, 64 bytes): what JWS ES256 wants.
    const sig = await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      keys.signing.privateKey,
      enc.encode(input),
    );
    return `${input}.${b64u(sig)}`;
  }

  /** A DPoP proof (RFC 9449) for one request with one grant: htm, htu (no query), jti, iat, ath. */
  async function dpopProof(keys, { htm, htu, token }) {
    const ath = b64u(await crypto.subtle.digest('SHA-256', enc.encode(token)));
    return signJws(
      keys,
      { typ: 'dpop+jwt', alg: 'ES256', jwk: keys.jwk },
      {
        htm,
        htu: String(htu).replace(/[?#].*$/, ''),
        jti: b64u(crypto.getRandomValues(new Uint8Array(12))),
        iat: now(),
        ath,
      },
    );
  }

  /** The label code (8 groups of 4 base32 characters) as its 20 secret bytes; throws on a typo. */
  function parseCode(text) {
    const clean = String(text).toUpperCase().replace(/[\s-]/g, '');
    if (clean.length !== 32) throw new Error(`claim code has ${clean.length} characters, expected 32`);
    const out = new Uint8Array(20);
    let bits = 0;
    let value = 0;
    let i = 0;
    for (const ch of clean) {
      const v = B32.indexOf(ch);
      if (v < 0) throw new Error('claim code has a character outside A-Z and 2-7');
      value = ((value << 5) | v) & 0xffff;
      bits += 5;
      if (bits >= 8) {
        out[i++] = (value >>> (bits - 8)) & 0xff;
        bits -= 8;
      }
    }
    return out;
  }

  /** proof = HMAC-SHA256(code bytes, "lenscap-claim-v1\n" + jkt + "\n" + serial + "\n" + nonce). */
  async function claimProof(code, { jkt, serial, nonce }) {
    const key = await crypto.subtle.importKey(
      'raw',
      parseCode(code),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    const mac = await crypto.subtle.sign(
      'HMAC',
      key,
      enc.encode(['lenscap-claim-v1', jkt, serial, nonce].join('\n')),
    );
    return b64u(mac);
  }

  /**
   * The short key code people compare across two screens (as Signal's safety numbers): the first
   * 40 bits of the key's RFC 7638 thumbprint in base32, `ABCD-EFGH`. Same as key-code.ts.
   */
  function keyCode(jkt) {
    const bin = atob(String(jkt).replace(/-/g, '+').replace(/_/g, '/'));
    let bits = 0;
    let value = 0;
    let out = '';
    for (let i = 0; i < 5 && i < bin.length; i++) {
      value = (value << 8) | bin.charCodeAt(i);
      bits += 8;
      while (bits >= 5) {
        out += B32[(value >>> (bits - 5)) & 31];
        bits -= 5;
      }
      value &= 0xff;
    }
    return `${out.slice(0, 4)}-${out.slice(4, 8)}`;
  }

  const member = (keys, role) => ({ sub: keys.user, role, jwk: keys.jwk, hpke: keys.hpkeJwk });

  /** A membership (`lenscap-membership+jwt`) signed by this browser's key: it must be the owner's. */
  function signMembership(keys, { serial, epoch, version, members }) {
    return signJws(
      keys,
      { typ: 'lenscap-membership+jwt', alg: 'ES256', kid: keys.jkt },
      { serial, epoch, version, iat: now(), members },
    );
  }

  /** The payload of a compact JWS (read, not verified: the camera is the judge). */
  function payloadOf(jws) {
    const p = String(jws).split('.')[1] || '';
    const bin = atob(p.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  }

  window.lenscapKeys = {
    loadOrCreate,
    load,
    thumbprint,
    keyCode,
    dpopProof,
    claimProof,
    member,
    signMembership,
    payloadOf,
  };
})();
