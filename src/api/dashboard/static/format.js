// Formatting and building DOM nodes: numbers, durations, relative times, URLs, state badges
// and the inline SVG sparklines. Text always goes in as text, never as HTML.

export const $ = (id) => document.getElementById(id);

export const integer = (n) => (n == null ? '–' : Number(n).toLocaleString('en'));

export const rate = (n) => (n == null ? '–' : n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1));

export function millis(ms) {
  if (ms == null) return '–';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function relative(iso) {
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

export function el(tag, attributes, ...children) {
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

export function time(iso, text) {
  return iso ? el('time', { datetime: iso, title: iso, text: text || relative(iso) }) : '';
}

// The URL as shown: host and path, query values already redacted by the service.
export const shortUrl = (url) => url.replace(/^https?:\/\//, '');

// The same, with line breaks allowed after each '/' and before '?' and '&'.
export function breakableUrl(url) {
  const parts = shortUrl(url).split(/(?<=\/)|(?=[?&])/);
  const nodes = [];
  parts.forEach((part, i) => {
    if (i > 0) nodes.push(el('wbr'));
    nodes.push(part);
  });
  return nodes;
}

export function badge(kind) {
  return el('span', { class: `badge ${kind}`, text: kind });
}

// Delivered (green) and failed (red, on top) attempts per 10-second bucket, oldest first.
export function sparkline(rates) {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 90;
  const height = 22;
  const bar = width / rates.deliveredSeries.length;
  const totals = rates.deliveredSeries.map((d, i) => d + rates.failedSeries[i]);
  const top = Math.max(1, ...totals);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Last 5 minutes in 10-second steps: ${rates.delivered} delivered, ${rates.failed} failed`);
  const base = document.createElementNS(ns, 'line');
  for (const [name, value] of [['x1', 0], ['x2', width], ['y1', height - 0.5], ['y2', height - 0.5]]) {
    base.setAttribute(name, String(value));
  }
  base.setAttribute('class', 'spark-base');
  svg.append(base);
  rates.deliveredSeries.forEach((delivered, i) => {
    const ok = (delivered / top) * (height - 1);
    const bad = (rates.failedSeries[i] / top) * (height - 1);
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
