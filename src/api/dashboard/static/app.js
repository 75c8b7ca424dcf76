// hookrouter dashboard: plain JavaScript, no dependencies, talks to this service only.
//
// Data flow: GET /dashboard/webhooks for the first view and after each filter change, then
// GET /dashboard/stream (Server-Sent Events, opened with a one-time ticket from
// POST /dashboard/ticket) pushes the same view twice a second. When the stream breaks (the
// service restarted, the network dropped) the page says "reconnecting" and opens a new one
// with a new ticket until it works. With access tokens, every call sends X-Access-Token from
// sessionStorage; without a valid one the page shows the sign-in form and no data.
'use strict';

(() => {
  const TOKEN_KEY = 'hookrouter.accessToken';
  const PAGE_SIZE = 50;
  const DETAIL_EVERY_MS = 2000;
  const $ = (id) => document.getElementById(id);

  const state = {
    filter: { state: '', user: '', q: '', page: 1 },
    view: null,
    source: null,
    reconnectTimer: null,
    reconnectDelay: 500,
    detailId: null,
    detailTimer: null,
    fetchAbort: null,
    alerts: '',
  };

  class AuthError extends Error {}
  class HttpError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // --- talking to the service --------------------------------------------------------------

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(path, { method = 'GET', body, signal } = {}) {
    const headers = { Accept: 'application/json' };
    const stored = token();
    if (stored) headers['X-Access-Token'] = stored;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401) throw new AuthError((data && data.error) || 'Access token required');
    if (!response.ok) throw new HttpError((data && data.error) || `HTTP ${response.status}`, response.status);
    return data;
  }

  function filterQuery(extra) {
    const params = new URLSearchParams();
    const f = state.filter;
    if (f.state) params.set('state', f.state);
    if (f.user) params.set('user', f.user);
    if (f.q) params.set('q', f.q);
    params.set('page', String(f.page));
    params.set('limit', String(PAGE_SIZE));
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params.toString();
  }

  // --- starting, signing in, connecting ----------------------------------------------------

  async function start() {
    if (state.fetchAbort) state.fetchAbort.abort();
    const abort = new AbortController();
    state.fetchAbort = abort;
    try {
      const view = await api(`/dashboard/webhooks?${filterQuery()}`, { signal: abort.signal });
      if (abort.signal.aborted) return;
      showBoard();
      render(view);
      connect();
    } catch (error) {
      if (error.name === 'AbortError') return;
      if (error instanceof AuthError) return requireToken();
      setConnection('offline', `Cannot reach the service (${error.message}); retrying`);
      scheduleReconnect(start);
    }
  }

  function connect() {
    closeStream();
    clearTimeout(state.reconnectTimer);
    api('/dashboard/ticket', { method: 'POST' })
      .then((answer) => {
        const source = new EventSource(`/dashboard/stream?${filterQuery({ ticket: answer.ticket })}`);
        state.source = source;
        source.addEventListener('view', (event) => {
          if (state.source !== source) return;
          state.reconnectDelay = 500;
          $('problem').hidden = true;
          render(JSON.parse(event.data));
        });
        source.addEventListener('problem', (event) => {
          const problem = JSON.parse(event.data);
          showProblem(problem.error, problem.redis === 'down');
        });
        source.addEventListener('closing', () => {
          if (state.source !== source) return;
          closeStream();
          setConnection('reconnecting', 'Reconnecting (the service is restarting)…');
          scheduleReconnect(connect);
        });
        source.onerror = () => {
          if (state.source !== source) return;
          closeStream();
          setConnection('reconnecting', 'Reconnecting…');
          scheduleReconnect(connect);
        };
      })
      .catch((error) => {
        if (error instanceof AuthError) return requireToken();
        setConnection('reconnecting', 'Reconnecting…');
        scheduleReconnect(connect);
      });
  }

  function closeStream() {
    if (state.source) {
      state.source.close();
      state.source = null;
    }
  }

  function scheduleReconnect(what) {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(what, state.reconnectDelay);
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 5000);
  }

  function setConnection(kind, text) {
    const element = $('connection');
    if (element.dataset.state === kind && element.textContent === text) return;
    element.dataset.state = kind;
    element.textContent = text;
    document.body.dataset.connection = kind;
  }

  function showBoard() {
    $('signin').hidden = true;
    $('board').hidden = false;
    $('sign-out').hidden = !token();
  }

  // Without a valid token: no stream, no data on the page, the sign-in form.
  function requireToken(message) {
    closeStream();
    clearTimeout(state.reconnectTimer);
    closeDetail();
    state.view = null;
    $('rows').replaceChildren();
    $('board').hidden = true;
    $('sign-out').hidden = true;
    $('signin').hidden = false;
    const error = $('signin-error');
    const rejected = message || (token() ? 'That token was not accepted.' : '');
    if (token()) sessionStorage.removeItem(TOKEN_KEY);
    error.textContent = rejected;
    error.hidden = !rejected;
    setConnection('signed-out', 'Access token required');
    $('token').focus();
  }

  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token').value = '';
    start();
  });

  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    requireToken('');
  });

  // --- formatting ----------------------------------------------------------------------------

  const integer = (n) => (n == null ? '–' : Number(n).toLocaleString('en'));
  const rate = (n) => (n == null ? '–' : n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1));

  function millis(ms) {
    if (ms == null) return '–';
    if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s`;
    if (ms >= 10) return `${Math.round(ms)} ms`;
    return `${ms.toFixed(1)} ms`;
  }

  function relative(iso) {
    if (!iso) return '';
    const diff = Date.parse(iso) - Date.now();
    const seconds = Math.round(Math.abs(diff) / 1000);
    let text;
    if (seconds < 1) return diff >= 0 ? 'now' : 'just now';
    if (seconds < 60) text = `${seconds} s`;
    else if (seconds < 3600) text = `${Math.round(seconds / 60)} min`;
    else if (seconds < 86400) text = `${Math.round(seconds / 3600)} h`;
    else text = `${Math.round(seconds / 86400)} d`;
    return diff >= 0 ? `in ${text}` : `${text} ago`;
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child != null) node.append(child);
    }
    return node;
  }

  function time(iso, text) {
    return iso ? el('time', { datetime: iso, title: iso, text: text || relative(iso) }) : '';
  }

  // The URL as shown: host and path, query values already redacted by the service.
  const shortUrl = (url) => url.replace(/^https?:\/\//, '');

  // The same, with line breaks allowed after each '/' and before '?' and '&'.
  function breakableUrl(url) {
    const parts = shortUrl(url).split(/(?<=\/)|(?=[?&])/);
    const nodes = [];
    parts.forEach((part, i) => {
      if (i > 0) nodes.push(el('wbr'));
      nodes.push(part);
    });
    return nodes;
  }

  function badge(kind) {
    return el('span', { class: `badge ${kind}`, text: kind });
  }

  // --- the summary and the table -------------------------------------------------------------

  function render(view) {
    state.view = view;
    renderSummary(view.summary);
    renderRows(view);
    const f = state.filter;
    const filtered = f.state || f.user || f.q;
    $('caption').textContent = `Webhooks, worst first: ${integer(view.total)} ${filtered ? 'matching' : 'in all'}`;
    $('page-info').textContent = `Page ${integer(view.page)} of ${integer(view.pages)}`;
    $('prev').disabled = view.page <= 1;
    $('next').disabled = view.page >= view.pages;
    $('board').dataset.generated = view.generatedAt;
    setConnection('live', 'Live');
    if (state.detailId) {
      const row = view.rows.find((r) => r.id === state.detailId);
      if (row) state.detailRow = row;
    }
  }

  function renderSummary(s) {
    const set = (key, text, warn) => {
      const dd = document.querySelector(`#summary dd[data-key="${key}"]`);
      dd.textContent = text;
      dd.classList.toggle('warn', Boolean(warn));
    };
    set('eventsIn', rate(s.eventsInPerS));
    set('deliveries', rate(s.deliveriesPerS));
    set('failures', rate(s.failuresPerS), s.failuresPerS > 0);
    set('backlog', integer(s.backlog));
    set('openCircuits', integer(s.openCircuits), s.openCircuits > 0);
    set('paused', integer(s.paused));
    set('disabled', integer(s.disabled), s.disabled > 0);
    set('instances', integer(s.instances), s.instances === 0);
    set('redis', s.redis, s.redis !== 'up');
    set('readerLag', integer(s.readerLag), s.readerLag > 1000);

    const select = $('f-state');
    for (const option of select.options) {
      if (!option.value) {
        option.textContent = `All states (${integer(s.webhooks)})`;
      } else {
        const label = option.value[0].toUpperCase() + option.value.slice(1);
        option.textContent = `${label} (${integer(s.states[option.value])})`;
      }
    }
    // Said aloud only when it changes.
    const parts = [];
    if (s.states.failing) parts.push(`${s.states.failing} failing`);
    if (s.states.retrying) parts.push(`${s.states.retrying} retrying`);
    if (s.redis !== 'up') parts.push('Redis unreachable');
    if (s.instances === 0) parts.push('no delivering instance is running');
    const alerts = parts.length ? `Attention: ${parts.join(', ')}.` : 'Every webhook is healthy.';
    if (alerts !== state.alerts) {
      state.alerts = alerts;
      $('alerts').textContent = alerts;
      $('alerts').classList.toggle('warn', parts.length > 0);
    }
  }

  function sparkline(rates) {
    const ns = 'http://www.w3.org/2000/svg';
    const width = 90;
    const height = 22;
    const points = rates.deliveredSeries.length;
    const bar = width / points;
    const totals = rates.deliveredSeries.map((d, i) => d + rates.failedSeries[i]);
    const top = Math.max(1, ...totals);
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.setAttribute('class', 'spark');
    svg.setAttribute('role', 'img');
    svg.setAttribute(
      'aria-label',
      `Last 5 minutes in 10-second steps: ${rates.delivered} delivered, ${rates.failed} failed`,
    );
    const base = document.createElementNS(ns, 'line');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(width));
    base.setAttribute('y1', String(height - 0.5));
    base.setAttribute('y2', String(height - 0.5));
    base.setAttribute('class', 'spark-base');
    svg.append(base);
    rates.deliveredSeries.forEach((delivered, i) => {
      const failed = rates.failedSeries[i];
      const ok = (delivered / top) * (height - 1);
      const bad = (failed / top) * (height - 1);
      for (const [value, y, kind] of [
        [ok, height - 1 - ok, 'spark-ok'],
        [bad, height - 1 - ok - bad, 'spark-bad'],
      ]) {
        if (value <= 0) continue;
        const rect = document.createElementNS(ns, 'rect');
        rect.setAttribute('x', (i * bar + 0.5).toFixed(2));
        rect.setAttribute('width', Math.max(bar - 1, 1).toFixed(2));
        rect.setAttribute('y', y.toFixed(2));
        rect.setAttribute('height', Math.max(value, 1).toFixed(2));
        rect.setAttribute('class', kind);
        svg.append(rect);
      }
    });
    return svg;
  }

  function nextCell(row) {
    if (row.state === 'failing' && row.nextProbeAt) return ['probe ', time(row.nextProbeAt)];
    if (row.state === 'retrying' && row.nextRetryAt) return ['retry ', time(row.nextRetryAt)];
    if (row.state === 'disabled') return [row.disabledReason || 'disabled'];
    if (row.state === 'paused') return ['paused'];
    return ['–'];
  }

  function nextTitle(row) {
    if (row.state === 'failing') return row.nextProbeAt;
    if (row.state === 'retrying') return row.nextRetryAt;
    if (row.state === 'disabled') return row.disabledReason;
    return null;
  }

  function errorCell(row) {
    const failure = row.lastFailure;
    if (!failure) return el('span', { class: 'muted', text: '–' });
    const recovered = row.lastSuccess && Date.parse(row.lastSuccess.time) > Date.parse(failure.time);
    return el(
      'span',
      { class: recovered ? 'last-error muted' : 'last-error', title: `${failure.error} (${failure.time})` },
      el('span', { class: 'error-text', text: failure.error }),
      ' ',
      el('span', { class: 'when' }, time(failure.time)),
    );
  }

  function renderRows(view) {
    const tbody = $('rows');
    const focused = document.activeElement && document.activeElement.closest('#rows tr');
    const focusedId = focused ? focused.dataset.id : null;
    const fragment = document.createDocumentFragment();
    if (!view.rows.length) {
      fragment.append(
        el('tr', {}, el('td', { colspan: '12', class: 'empty', text: 'No webhook matches these filters.' })),
      );
    }
    for (const row of view.rows) {
      const r = row.rates;
      const open = el(
        'button',
        {
          type: 'button',
          class: 'link',
          title: row.url,
          'aria-label': `Details of ${shortUrl(row.url)}`,
          'aria-controls': 'detail',
          'aria-expanded': String(state.detailId === row.id),
        },
        ...breakableUrl(row.url),
      );
      open.addEventListener('click', () => openDetail(row));
      fragment.append(
        el(
          'tr',
          { 'data-id': row.id, 'data-state': row.state, class: state.detailId === row.id ? 'selected' : null },
          el('td', { 'data-label': 'State' }, badge(row.state)),
          el('th', { scope: 'row', 'data-label': 'Endpoint', class: 'endpoint' }, open),
          el('td', {
            'data-label': 'User',
            class: row.user ? 'user' : 'user global',
            title: row.user || 'a global webhook: every user\'s events',
            text: row.user || 'all users',
          }),
          el('td', { 'data-label': 'Backlog', class: 'num', text: integer(row.backlog) }),
          el('td', { 'data-label': 'In flight', class: 'num', text: integer(row.inFlight) }),
          el('td', { 'data-label': 'Delivered 5 min', class: 'num', text: integer(r.delivered) }),
          el('td', { 'data-label': 'Failed 5 min', class: r.failed ? 'num warn' : 'num', text: integer(r.failed) }),
          el('td', { 'data-label': 'Trend 5 min', class: 'trend' }, sparkline(r)),
          el('td', { 'data-label': 'p50', class: 'num', text: millis(r.latencyP50Ms) }),
          el('td', { 'data-label': 'p99', class: 'num', text: millis(r.latencyP99Ms) }),
          el('td', { 'data-label': 'Last error', class: 'error-cell' }, errorCell(row)),
          el('td', { 'data-label': 'Next', class: 'next' }, el('span', { title: nextTitle(row) }, ...nextCell(row))),
        ),
      );
    }
    tbody.replaceChildren(fragment);
    if (focusedId) {
      const again = tbody.querySelector(`tr[data-id="${focusedId}"] button`);
      if (again) again.focus();
    }
  }

  // --- filters and paging --------------------------------------------------------------------

  let filterTimer = null;
  function applyFilter(delay) {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.filter.state = $('f-state').value;
      state.filter.user = $('f-user').value.trim();
      state.filter.q = $('f-q').value.trim();
      state.filter.page = 1;
      refresh();
    }, delay);
  }

  // After a filter or page change: the new view at once, then a stream for it.
  function refresh() {
    closeStream();
    start();
  }

  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    applyFilter(0);
  });
  $('f-state').addEventListener('change', () => applyFilter(0));
  $('f-user').addEventListener('input', () => applyFilter(200));
  $('f-q').addEventListener('input', () => applyFilter(120));
  $('prev').addEventListener('click', () => {
    if (state.filter.page > 1) {
      state.filter.page -= 1;
      refresh();
    }
  });
  $('next').addEventListener('click', () => {
    if (state.view && state.filter.page < state.view.pages) {
      state.filter.page += 1;
      refresh();
    }
  });

  // --- the detail panel -----------------------------------------------------------------------

  function openDetail(row) {
    state.detailId = row.id;
    state.detailRow = row;
    $('detail').hidden = false;
    document.body.classList.add('with-detail');
    $('detail-title').textContent = shortUrl(row.url);
    $('detail-meta').replaceChildren(
      el('span', {}, 'id ', el('code', { text: row.id })),
      ' · ',
      el('span', { text: row.user ? `user ${row.user}` : 'all users' }),
    );
    $('detail-status').textContent = '';
    $('attempts').querySelector('tbody').replaceChildren();
    $('dead').querySelector('tbody').replaceChildren();
    for (const tr of document.querySelectorAll('#rows tr')) {
      tr.classList.toggle('selected', tr.dataset.id === row.id);
      const button = tr.querySelector('button.link');
      if (button) button.setAttribute('aria-expanded', String(tr.dataset.id === row.id));
    }
    $('detail-title').focus();
    loadDetail();
    clearInterval(state.detailTimer);
    state.detailTimer = setInterval(loadDetail, DETAIL_EVERY_MS);
  }

  function closeDetail() {
    const id = state.detailId;
    state.detailId = null;
    clearInterval(state.detailTimer);
    $('detail').hidden = true;
    document.body.classList.remove('with-detail');
    for (const tr of document.querySelectorAll('#rows tr.selected')) tr.classList.remove('selected');
    if (id) {
      const button = document.querySelector(`#rows tr[data-id="${id}"] button.link`);
      if (button) {
        button.setAttribute('aria-expanded', 'false');
        button.focus();
      }
    }
  }

  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.detailId) closeDetail();
  });

  async function loadDetail() {
    const id = state.detailId;
    if (!id) return;
    try {
      const [health, attempts, dead] = await Promise.all([
        api(`/webhooks/${id}/health`),
        api(`/webhooks/${id}/attempts?limit=20`),
        api(`/webhooks/${id}/dead?limit=20`),
      ]);
      if (state.detailId !== id) return;
      renderHealth(health);
      renderAttempts(attempts.results);
      renderDead(dead.results, Boolean(dead.nextCursor));
    } catch (error) {
      if (error instanceof AuthError) return requireToken();
      if (state.detailId !== id) return;
      if (error instanceof HttpError && error.status === 404) {
        $('detail-status').textContent = 'This webhook no longer exists.';
        clearInterval(state.detailTimer);
        return;
      }
      $('detail-status').textContent = `Could not load the details: ${error.message}`;
    }
  }

  function renderHealth(h) {
    const facts = $('detail-health');
    const row = state.detailRow || {};
    const fact = (term, ...value) => [el('dt', { text: term }), el('dd', {}, ...value)];
    const success = h.lastSuccess;
    const failure = h.lastFailure;
    const items = [
      ...fact('State', badge(h.state)),
      ...fact('Backlog', integer(h.backlog)),
      ...fact('In flight', integer(h.inFlight)),
      ...fact('Waiting for retry', integer(h.waiting)),
      ...fact('Failures in a row', integer(h.consecutiveFailures)),
      ...fact('Failing since', h.failingSince ? time(h.failingSince) : '–'),
      ...fact('Next retry', h.nextRetryAt ? time(h.nextRetryAt) : '–'),
      ...fact('Next probe', h.nextProbeAt ? time(h.nextProbeAt) : '–'),
      ...fact(
        'Last success',
        ...(success ? [time(success.time), ` · ${success.status} · ${millis(success.latencyMs)}`] : ['–']),
      ),
      ...fact('Last failure', ...(failure ? [time(failure.time), ` · ${failure.error}`] : ['–'])),
      ...fact('Latency p50 / p99', `${millis(h.rates.latencyP50Ms)} / ${millis(h.rates.latencyP99Ms)}`),
      ...fact(
        'Last 5 min',
        sparkline(h.rates),
        ` ${integer(h.rates.delivered)} delivered, ${integer(h.rates.failed)} failed`,
      ),
      ...fact('Since created', `${integer(h.delivered)} delivered, ${integer(h.failed)} failed, ${integer(h.deadLettered)} dead`),
    ];
    if (row.disabledReason && h.state === 'disabled') items.push(...fact('Disabled because', row.disabledReason));
    if (row.instance) items.push(...fact('Delivered by', row.instance));
    facts.replaceChildren(...items);
    $('detail').dataset.state = h.state;
    $('act-pause').hidden = h.state === 'paused';
    $('act-resume').hidden = h.state !== 'paused';
    $('act-enable').hidden = h.state !== 'disabled';
  }

  function renderAttempts(results) {
    const tbody = $('attempts').querySelector('tbody');
    tbody.replaceChildren(
      ...results.map((a) =>
        el(
          'tr',
          { 'data-outcome': a.outcome },
          el('td', { 'data-label': 'When' }, time(a.time)),
          el('td', { 'data-label': 'Event', text: a.ev }),
          el('td', { 'data-label': 'Try', class: 'num', text: integer(a.attempt) }),
          el('td', { 'data-label': 'Outcome' }, el('span', { class: `outcome ${a.outcome}`, text: a.outcome })),
          el('td', { 'data-label': 'Status', class: 'num', text: a.status == null ? '–' : String(a.status) }),
          el('td', { 'data-label': 'Latency', class: 'num', text: millis(a.latencyMs) }),
          el('td', { 'data-label': 'Error', class: 'error-cell', text: a.error || '' }),
        ),
      ),
    );
    $('attempts-empty').hidden = results.length > 0;
  }

  function renderDead(results, more) {
    const tbody = $('dead').querySelector('tbody');
    tbody.replaceChildren(
      ...results.map((d) =>
        el(
          'tr',
          {},
          el('td', { 'data-label': 'When' }, time(d.time)),
          el('td', { 'data-label': 'Delivery' }, el('code', { text: d.id })),
          el('td', { 'data-label': 'Event', text: d.event && d.event.ev ? d.event.ev : '' }),
          el('td', { 'data-label': 'Tries', class: 'num', text: integer(d.attempts) }),
          el('td', { 'data-label': 'Last error', class: 'error-cell', text: d.error }),
        ),
      ),
    );
    $('dead-empty').hidden = results.length > 0;
    $('act-replay').hidden = results.length === 0;
    $('dead-title').textContent = results.length ? `Dead letters (${results.length}${more ? '+' : ''})` : 'Dead letters';
  }

  async function act(button, request, done) {
    const id = state.detailId;
    if (!id) return;
    button.disabled = true;
    $('detail-status').textContent = 'Working…';
    try {
      const answer = await request(id);
      if (state.detailId === id) $('detail-status').textContent = done(answer);
      await loadDetail();
    } catch (error) {
      if (error instanceof AuthError) return requireToken();
      $('detail-status').textContent = `Failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  $('act-pause').addEventListener('click', (event) =>
    act(event.currentTarget, (id) => api(`/webhooks/${id}/pause`, { method: 'POST' }), () => 'Paused: events queue, nothing is sent.'),
  );
  $('act-resume').addEventListener('click', (event) =>
    act(event.currentTarget, (id) => api(`/webhooks/${id}/resume`, { method: 'POST' }), () => 'Resumed: the queue drains.'),
  );
  $('act-retry').addEventListener('click', (event) =>
    act(event.currentTarget, (id) => api(`/webhooks/${id}/retry`, { method: 'POST' }), () => 'Retrying now.'),
  );
  $('act-enable').addEventListener('click', (event) =>
    act(
      event.currentTarget,
      (id) => api(`/webhooks/${id}`, { method: 'PUT', body: { enabled: true } }),
      () => 'Enabled.',
    ),
  );
  $('act-replay').addEventListener('click', (event) =>
    act(
      event.currentTarget,
      (id) => api(`/webhooks/${id}/dead/replay`, { method: 'POST' }),
      (answer) => `Replayed ${answer.replayed} dead letter${answer.replayed === 1 ? '' : 's'}.`,
    ),
  );

  function showProblem(message, redisDown) {
    const problem = $('problem');
    problem.textContent = redisDown
      ? 'Redis is unreachable: showing the last figures until it answers again.'
      : `The dashboard could not be updated: ${message}`;
    problem.hidden = false;
    if (redisDown) {
      const dd = document.querySelector('#summary dd[data-key="redis"]');
      dd.textContent = 'down';
      dd.classList.add('warn');
    }
  }

  // Relative times move on between updates too.
  setInterval(() => {
    for (const node of document.querySelectorAll('time[datetime]')) {
      node.textContent = relative(node.getAttribute('datetime'));
    }
  }, 1000);

  start();
})();
