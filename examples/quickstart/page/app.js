// The quickstart's browser app: plain JavaScript, no build step.
//
// It signs in with the authorization code flow and PKCE (RFC 7636): a
// fresh verifier and state per attempt, kept in sessionStorage only until
// the answer comes back to this page, which checks state and the issuer
// (RFC 9207) before redeeming the code. The access token lives in this
// closure only (never in localStorage or a readable cookie); the refresh
// token lives in an HttpOnly cookie that this script cannot read and the
// browser sends to /token by itself. On a 401 the app refreshes once
// through the cookie and retries.
'use strict';

(() => {
  const clientId = document.querySelector('meta[name="tollgate-client-id"]').content;
  const $ = (id) => document.getElementById(id);
  // Every request says it comes from script: a cross-site form cannot
  // send this header, so the token endpoint refuses forged requests.
  const fromScript = { 'X-Requested-With': 'fetch' };

  // Where the code flow comes back to: this page (the client's one
  // registered redirect URI).
  const redirectUri = `${window.location.origin}/`;
  const pkceKey = 'tollgate-sign-in';

  let accessToken = null;
  let refreshes = 0;

  function setStatus(text) {
    $('status').textContent = text;
  }

  function showError(text) {
    $('error').textContent = text;
  }

  function signedOut(why) {
    accessToken = null;
    setStatus('signed out');
    showError(why || '');
    $('signed-in').hidden = true;
    $('sign-in').hidden = false;
    $('claims').textContent = '';
    $('sessions').replaceChildren();
  }

  async function tokenRequest(path, params) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...fromScript },
      body: new URLSearchParams({ client_id: clientId, ...params }),
    });
    const text = await res.text();
    const body = text ? JSON.parse(text) : {};
    if (!res.ok) {
      throw new Error(body.error_description || body.error || `HTTP ${res.status}`);
    }
    return body;
  }

  // One refresh at a time: calls that got a 401 together share it.
  let refreshing = null;
  function refresh() {
    if (!refreshing) {
      refreshing = tokenRequest('/token', { grant_type: 'refresh_token' })
        .then((tokens) => {
          accessToken = tokens.access_token;
          refreshes += 1;
          $('refreshes').dataset.count = String(refreshes);
          $('refreshes').textContent = `(access token refreshed ${refreshes}×)`;
          return true;
        })
        .catch(() => false)
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  // A call to the API with the access token; on a 401, one refresh
  // through the cookie and one retry (the axios-interceptor pattern).
  async function api(path, options = {}, retried = false) {
    const headers = { ...fromScript };
    if (accessToken) {
      headers.Authorization = `Bearer ${accessToken}`;
    }
    const res = await fetch(path, { ...options, credentials: 'same-origin', headers });
    if (res.status === 401 && !retried && (await refresh())) {
      return api(path, options, true);
    }
    if (res.status === 401) {
      signedOut('Your session has ended. Please sign in again.');
      throw new Error('signed out');
    }
    if (!res.ok) {
      throw new Error(`${path}: HTTP ${res.status}`);
    }
    return res;
  }

  async function showMe() {
    const claims = await (await api('/me')).json();
    $('claims').textContent = JSON.stringify(claims, null, 2);
    setStatus(`signed in as ${claims.sub}`);
    showError('');
    $('sign-in').hidden = true;
    $('signed-in').hidden = false;
  }

  function when(seconds) {
    return new Date(seconds * 1000).toLocaleString();
  }

  function cell(text) {
    const td = document.createElement('td');
    // textContent, never innerHTML: a User-Agent is attacker-controlled.
    td.textContent = text;
    return td;
  }

  async function loadSessions() {
    const sessions = await (await api('/sessions')).json();
    const rows = sessions.map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.sid = s.sid;
      tr.className = s.current ? 'current session' : 'session';
      const device = (s.last_user_agent || 'unknown browser') + (s.current ? ' (this device)' : '');
      tr.append(cell(device), cell(s.last_ip || ''), cell(when(s.created_at)), cell(when(s.last_used_at)));
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'log-out-one';
      button.textContent = s.current ? 'Log out this device' : 'Log out';
      button.addEventListener('click', () => run(() => logOutOne(s.sid, s.current)));
      const td = document.createElement('td');
      td.append(button);
      tr.append(td);
      return tr;
    });
    $('sessions').replaceChildren(...rows);
  }

  async function logOutOne(sid, current) {
    await api(`/sessions/${encodeURIComponent(sid)}`, { method: 'DELETE' });
    if (current) {
      signedOut('');
    } else {
      await loadSessions();
    }
  }

  // Runs an action, showing its failure; "signed out" has shown itself.
  async function run(action) {
    try {
      await action();
    } catch (e) {
      if (e.message !== 'signed out') {
        showError(e.message);
      }
    }
  }

  function base64url(bytes) {
    let text = '';
    bytes.forEach((b) => {
      text += String.fromCharCode(b);
    });
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // 256 bits from the browser's CSPRNG.
  function randomValue() {
    return base64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  // To /authorize, with a fresh PKCE verifier (its S256 challenge sent)
  // and state, kept for this tab until the answer comes back.
  async function startSignIn() {
    const verifier = randomValue();
    const state = randomValue();
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(pkceKey, JSON.stringify({ verifier, state }));
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'read write',
      state,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: 'S256',
    });
    window.location.assign(`/authorize?${query}`);
  }

  // The answer on this page: state and iss checked, then the code
  // redeemed with the verifier (the refresh token arrives as the cookie).
  async function finishSignIn(answer) {
    const saved = JSON.parse(sessionStorage.getItem(pkceKey) || 'null');
    sessionStorage.removeItem(pkceKey);
    window.history.replaceState(null, '', '/');
    if (!saved || answer.get('state') !== saved.state) {
      throw new Error('This sign-in answer was not for this page (state mismatch).');
    }
    const metadata = await (await fetch('/.well-known/oauth-authorization-server')).json();
    if (answer.get('iss') !== metadata.issuer) {
      throw new Error('This sign-in answer came from another server (iss mismatch).');
    }
    if (answer.has('error')) {
      throw new Error(answer.get('error_description') || answer.get('error'));
    }
    const tokens = await tokenRequest('/token', {
      grant_type: 'authorization_code',
      code: answer.get('code'),
      redirect_uri: redirectUri,
      code_verifier: saved.verifier,
    });
    accessToken = tokens.access_token;
  }

  $('sign-in-button').addEventListener('click', () => run(startSignIn));
  $('call-me').addEventListener('click', () => run(showMe));
  $('load-sessions').addEventListener('click', () => run(loadSessions));
  $('log-out-others').addEventListener('click', () =>
    run(async () => {
      await api('/sessions', { method: 'DELETE' });
      await loadSessions();
    }),
  );
  $('log-out-everywhere').addEventListener('click', () =>
    run(async () => {
      await api('/sessions?all=true', { method: 'DELETE' });
      signedOut('');
    }),
  );
  $('sign-out').addEventListener('click', () =>
    run(async () => {
      // /revoke reads the refresh token from the cookie, ends the session
      // and clears the cookie.
      await tokenRequest('/revoke', {});
      signedOut('');
    }),
  );

  // Back from the sign-in pages: the code (or the error) in the query.
  // Otherwise a reload keeps the session: the cookie gets a fresh access
  // token.
  const answer = new URLSearchParams(window.location.search);
  run(async () => {
    if (answer.has('code') || answer.has('error')) {
      try {
        await finishSignIn(answer);
      } catch (e) {
        signedOut(e.message);
        return;
      }
      await showMe();
      await loadSessions();
    } else if (await refresh()) {
      await showMe();
      await loadSessions();
    } else {
      signedOut('');
    }
  });
})();
