// The quickstart's browser app: plain JavaScript, no build step.
//
// The access token lives in this closure only (never in localStorage or a
// readable cookie); the refresh token lives in an HttpOnly cookie that
// this script cannot read and the browser sends to /token by itself. On a
// 401 the app refreshes once through the cookie and retries.
'use strict';

(() => {
  const clientId = document.querySelector('meta[name="tollgate-client-id"]').content;
  const $ = (id) => document.getElementById(id);
  // Every request says it comes from script: a cross-site form cannot
  // send this header, so the token endpoint refuses forged requests.
  const fromScript = { 'X-Requested-With': 'fetch' };

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

  $('sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    run(async () => {
      const tokens = await tokenRequest('/token', {
        grant_type: 'password',
        username: $('username').value,
        password: $('password').value,
        scope: 'read write',
      });
      $('password').value = '';
      accessToken = tokens.access_token;
      await showMe();
      await loadSessions();
    });
  });
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

  // A reload keeps the session: the cookie gets a fresh access token.
  run(async () => {
    if (await refresh()) {
      await showMe();
      await loadSessions();
    } else {
      signedOut('');
    }
  });
})();
