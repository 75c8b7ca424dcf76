// The summary strip and the table of webhooks, rebuilt from each view the service sends.

import { $, badge, breakableUrl, el, integer, millis, rate, shortUrl, sparkline, time } from './format.js';

let alerts = '';

export function renderSummary(s) {
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

  for (const option of $('f-state').options) {
    if (!option.value) {
      option.textContent = `All states (${integer(s.webhooks)})`;
    } else {
      const label = option.value[0].toUpperCase() + option.value.slice(1);
      option.textContent = `${label} (${integer(s.states[option.value])})`;
    }
  }
  // Said aloud (aria-live) only when it changes.
  const parts = [];
  if (s.states.failing) parts.push(`${s.states.failing} failing`);
  if (s.states.retrying) parts.push(`${s.states.retrying} retrying`);
  if (s.redis !== 'up') parts.push('Redis unreachable');
  if (s.instances === 0) parts.push('no delivering instance is running');
  const sentence = parts.length ? `Attention: ${parts.join(', ')}.` : 'Every webhook is healthy.';
  if (sentence !== alerts) {
    alerts = sentence;
    $('alerts').textContent = sentence;
    $('alerts').classList.toggle('warn', parts.length > 0);
  }
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

// Rebuilds the rows; `selectedId` is the row whose details are open, `onOpen(row)` opens them.
// Keyboard focus on a row's button survives the rebuild.
export function renderRows(view, { selectedId, onOpen }) {
  const tbody = $('rows');
  const focused = document.activeElement && document.activeElement.closest('#rows tr');
  const focusedId = focused ? focused.dataset.id : null;
  const fragment = document.createDocumentFragment();
  if (!view.rows.length) {
    fragment.append(el('tr', {}, el('td', { colspan: '12', class: 'empty', text: 'No webhook matches these filters.' })));
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
        'aria-expanded': String(selectedId === row.id),
      },
      ...breakableUrl(row.url),
    );
    open.addEventListener('click', () => onOpen(row));
    fragment.append(
      el(
        'tr',
        { 'data-id': row.id, 'data-state': row.state, class: selectedId === row.id ? 'selected' : null },
        el('td', { 'data-label': 'State' }, badge(row.state)),
        el('th', { scope: 'row', 'data-label': 'Endpoint', class: 'endpoint' }, open),
        el('td', {
          'data-label': 'User',
          class: row.user ? 'user' : 'user global',
          title: row.user || "a global webhook: every user's events",
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

// Marks the row whose details are open (or none).
export function markSelected(selectedId) {
  for (const tr of document.querySelectorAll('#rows tr[data-id]')) {
    tr.classList.toggle('selected', tr.dataset.id === selectedId);
    const button = tr.querySelector('button.link');
    if (button) button.setAttribute('aria-expanded', String(tr.dataset.id === selectedId));
  }
}
