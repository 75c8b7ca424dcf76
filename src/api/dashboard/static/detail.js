// The detail panel of one webhook: its health (with rates), recent attempts, dead letters and
// replays (running ones with their progress), refreshed every 2 s while open, and the actions,
// "replay since…" among them. Everything goes through the webhook routes
// any other client uses.

import { api, AuthError, HttpError } from './api.js';
import { $, badge, el, integer, millis, shortUrl, sparkline, time } from './format.js';

const REFRESH_MS = 2000;

// `onAuthError()` runs when the token is refused; `onSelect(id or null)` when the panel opens
// or closes (the table marks the row).
export function createDetail({ onAuthError, onSelect }) {
  let id = null;
  let row = null;
  let timer = null;

  async function load() {
    const current = id;
    if (!current) return;
    try {
      const [health, attempts, dead, replays] = await Promise.all([
        api(`/webhooks/${current}/health`),
        api(`/webhooks/${current}/attempts?limit=20`),
        api(`/webhooks/${current}/dead?limit=20`),
        api(`/webhooks/${current}/replays`),
      ]);
      if (id !== current) return;
      renderHealth(health, row || {});
      renderAttempts(attempts.results);
      renderDead(dead.results, Boolean(dead.nextCursor));
      renderReplays(replays.results, cancelReplay);
    } catch (error) {
      if (error instanceof AuthError) return onAuthError();
      if (id !== current) return;
      if (error instanceof HttpError && error.status === 404) {
        $('detail-status').textContent = 'This webhook no longer exists.';
        clearInterval(timer);
        return;
      }
      $('detail-status').textContent = `Could not load the details: ${error.message}`;
    }
  }

  function open(selected) {
    id = selected.id;
    row = selected;
    $('detail').hidden = false;
    document.body.classList.add('with-detail');
    $('detail-title').textContent = shortUrl(selected.url);
    $('detail-meta').replaceChildren(
      el('span', {}, 'id ', el('code', { text: selected.id })),
      ' · ',
      el('span', { text: selected.user ? `user ${selected.user}` : 'all users' }),
    );
    $('detail-status').textContent = '';
    $('detail-health').replaceChildren();
    $('attempts').querySelector('tbody').replaceChildren();
    $('dead').querySelector('tbody').replaceChildren();
    $('replays').querySelector('tbody').replaceChildren();
    $('replay-since').value = localTime(Date.now() - 24 * 3600 * 1000);
    delete $('detail').dataset.state;
    onSelect(id);
    $('detail-title').focus();
    load();
    clearInterval(timer);
    timer = setInterval(load, REFRESH_MS);
  }

  function close() {
    const was = id;
    id = null;
    row = null;
    clearInterval(timer);
    $('detail').hidden = true;
    document.body.classList.remove('with-detail');
    onSelect(null);
    const button = was && document.querySelector(`#rows tr[data-id="${was}"] button.link`);
    if (button) button.focus();
  }

  async function act(button, request, done) {
    const current = id;
    if (!current) return;
    button.disabled = true;
    $('detail-status').textContent = 'Working…';
    try {
      const answer = await request(current);
      if (id === current) $('detail-status').textContent = done(answer);
      await load();
    } catch (error) {
      if (error instanceof AuthError) return onAuthError();
      $('detail-status').textContent = `Failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  const action = (button, request, done) => $(button).addEventListener('click', (event) => act(event.currentTarget, request, done));
  action('act-pause', (w) => api(`/webhooks/${w}/pause`, { method: 'POST' }), () => 'Paused: events queue, nothing is sent.');
  action('act-resume', (w) => api(`/webhooks/${w}/resume`, { method: 'POST' }), () => 'Resumed: the queue drains.');
  action('act-retry', (w) => api(`/webhooks/${w}/retry`, { method: 'POST' }), () => 'Retrying now.');
  action('act-enable', (w) => api(`/webhooks/${w}`, { method: 'PUT', body: { enabled: true } }), () => 'Enabled.');
  action(
    'act-replay',
    (w) => api(`/webhooks/${w}/dead/replay`, { method: 'POST' }),
    (answer) => `Replayed ${answer.replayed} dead letter${answer.replayed === 1 ? '' : 's'}.`,
  );
  $('replay-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const since = new Date($('replay-since').value);
    if (Number.isNaN(since.getTime())) {
      $('detail-status').textContent = 'Pick the time to replay from.';
      return;
    }
    const onlyUndelivered = $('replay-undelivered').checked;
    act(
      $('act-replay-since'),
      (w) => api(`/webhooks/${w}/replay`, { method: 'POST', body: { since: since.toISOString(), onlyUndelivered } }),
      (answer) => `Replay ${answer.replay.id} started.`,
    );
  });
  function cancelReplay(button, n) {
    act(button, (w) => api(`/webhooks/${w}/replays/${n}`, { method: 'DELETE' }), () => `Replay ${n} cancelled.`);
  }
  $('detail-close').addEventListener('click', close);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && id) close();
  });

  return {
    open,
    close,
    get id() {
      return id;
    },
    // The latest row of the open webhook, from the table's last view.
    update(latest) {
      if (latest && latest.id === id) row = latest;
    },
  };
}

function renderHealth(h, row) {
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
    ...fact('Last success', ...(success ? [time(success.time), ` · ${success.status} · ${millis(success.latencyMs)}`] : ['–'])),
    ...fact('Last failure', ...(failure ? [time(failure.time), ` · ${failure.error}`] : ['–'])),
    ...fact('Latency p50 / p99', `${millis(h.rates.latencyP50Ms)} / ${millis(h.rates.latencyP99Ms)}`),
    ...fact('Last 5 min', sparkline(h.rates), ` ${integer(h.rates.delivered)} delivered, ${integer(h.rates.failed)} failed`),
    ...fact('Since created', `${integer(h.delivered)} delivered, ${integer(h.failed)} failed, ${integer(h.deadLettered)} dead`),
  ];
  const flow = h.flow;
  if (flow) {
    const rate = [flow.rateLimit ? `limit ${integer(flow.rateLimit)}/s` : null, flow.learnedRate ? `learned ${flow.learnedRate}/s from 429s` : null]
      .filter(Boolean)
      .join(', ');
    items.push(
      ...fact('Concurrency', `${integer(flow.concurrency)} at once`, flow.cuts ? ` · halved ${integer(flow.cuts)}× on overload` : ''),
      ...fact('Rate', rate || 'not limited'),
      ...fact('Receiver asked to pause', flow.pausedUntil ? time(flow.pausedUntil) : '–'),
      ...fact(
        'Host',
        el('code', { text: flow.host }),
        ` · ${integer(flow.hostConnections)} of ${integer(flow.hostCap)} connections`,
        flow.hostWaiting ? ` · ${integer(flow.hostWaiting)} webhooks waiting${flow.waitingForHost ? ' (this one too)' : ''}` : '',
      ),
    );
  }
  if (row.disabledReason && h.state === 'disabled') items.push(...fact('Disabled because', row.disabledReason));
  if (row.instance) items.push(...fact('Delivered by', row.instance));
  $('detail-health').replaceChildren(...items);
  $('detail').dataset.state = h.state;
  $('act-pause').hidden = h.state === 'paused';
  $('act-resume').hidden = h.state !== 'paused';
  $('act-enable').hidden = h.state !== 'disabled';
}

function renderAttempts(results) {
  $('attempts')
    .querySelector('tbody')
    .replaceChildren(
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
  $('dead')
    .querySelector('tbody')
    .replaceChildren(
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

// A time as a datetime-local input shows it (local time, to the second).
function localTime(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return date.toISOString().slice(0, 19);
}

function renderReplays(results, cancel) {
  $('replays')
    .querySelector('tbody')
    .replaceChildren(
      ...results.map((r) => {
        const stop = el('button', { type: 'button', class: 'quiet', text: 'Cancel' });
        stop.addEventListener('click', () => cancel(stop, r.id));
        return el(
          'tr',
          { 'data-state': r.state },
          el('td', { 'data-label': '#', class: 'num', text: String(r.id) }),
          el('td', { 'data-label': 'State', text: r.onlyUndelivered ? `${r.state} (undelivered only)` : r.state }),
          el('td', { 'data-label': 'Since' }, time(r.since)),
          el('td', { 'data-label': 'Matched', class: 'num', text: integer(r.matched) }),
          el('td', { 'data-label': 'Queued', class: 'num', text: integer(r.queued) }),
          el('td', { 'data-label': 'Delivered', class: 'num', text: integer(r.delivered) }),
          el('td', { 'data-label': 'Reached' }, r.reached ? time(r.reached) : '–'),
          el('td', {}, r.state === 'running' ? stop : ''),
        );
      }),
    );
  $('replays-empty').hidden = results.length > 0;
  const running = results.filter((r) => r.state === 'running').length;
  $('replays-title').textContent = running ? `Replays (${running} running)` : 'Replays';
}
