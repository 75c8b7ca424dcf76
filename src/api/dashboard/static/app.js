// hookrouter dashboard: plain JavaScript modules, no dependencies, talking to this service only.
//
// Data flow: GET /dashboard/webhooks for the first view and after each filter change, then
// GET /dashboard/stream (Server-Sent Events, opened with a one-time ticket from
// POST /dashboard/ticket) pushes the same view twice a second. When the stream breaks (the
// service restarted, the network dropped) the page says "Reconnecting" and opens a new one with
// a new ticket until it works. With access tokens every call sends the tab's token (api.js);
// without a valid one the page shows the sign-in form and no data.

import { api, AuthError, forgetToken, keepToken, token } from './api.js';
import { createDetail } from './detail.js';
import { $, integer, relative } from './format.js';
import { markSelected, renderRows, renderSummary } from './table.js';

const PAGE_SIZE = 50;

const state = {
  filter: { state: '', user: '', q: '', page: 1 },
  view: null,
  source: null,
  reconnectTimer: null,
  reconnectDelay: 500,
  fetchAbort: null,
};

const detail = createDetail({ onAuthError: () => requireToken(), onSelect: markSelected });

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

// --- the first view, the stream, reconnecting ----------------------------------------------

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
        showProblem(problem.error, problem.redis);
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

// `redis`: 'up', 'loading' (restarted, reading its data back) or 'down'.
function showProblem(message, redis) {
  const problem = $('problem');
  const redisDown = redis !== 'up';
  problem.textContent = redisDown
    ? `Redis is ${redis === 'loading' ? 'loading its data' : 'unreachable'}: showing the last figures until it answers again.`
    : `The dashboard could not be updated: ${message}`;
  problem.hidden = false;
  if (redisDown) {
    const dd = document.querySelector('#summary dd[data-key="redis"]');
    dd.textContent = redis;
    dd.classList.add('warn');
  }
}

function render(view) {
  state.view = view;
  renderSummary(view.summary);
  renderRows(view, { selectedId: detail.id, onOpen: detail.open });
  detail.update(view.rows.find((row) => row.id === detail.id));
  const f = state.filter;
  const filtered = f.state || f.user || f.q;
  $('caption').textContent = `Webhooks, worst first: ${integer(view.total)} ${filtered ? 'matching' : 'in all'}`;
  $('page-info').textContent = `Page ${integer(view.page)} of ${integer(view.pages)}`;
  $('prev').disabled = view.page <= 1;
  $('next').disabled = view.page >= view.pages;
  $('board').dataset.generated = view.generatedAt;
  setConnection('live', 'Live');
}

// --- signing in ----------------------------------------------------------------------------

function showBoard() {
  $('signin').hidden = true;
  $('board').hidden = false;
  $('sign-out').hidden = !token();
}

// Without a valid token: no stream, no data on the page, the sign-in form.
function requireToken(message) {
  closeStream();
  clearTimeout(state.reconnectTimer);
  detail.close();
  state.view = null;
  $('rows').replaceChildren();
  $('board').hidden = true;
  $('sign-out').hidden = true;
  $('signin').hidden = false;
  const rejected = message ?? (token() ? 'That token was not accepted.' : '');
  forgetToken();
  $('signin-error').textContent = rejected;
  $('signin-error').hidden = !rejected;
  setConnection('signed-out', 'Access token required');
  $('token').focus();
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('token').value.trim();
  if (!value) return;
  keepToken(value);
  $('token').value = '';
  start();
});

$('sign-out').addEventListener('click', () => requireToken(''));

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

// Relative times move on between updates too.
setInterval(() => {
  for (const node of document.querySelectorAll('time[datetime]')) {
    node.textContent = relative(node.getAttribute('datetime'));
  }
}, 1000);

start();
