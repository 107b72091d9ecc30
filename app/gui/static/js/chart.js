// A fixed-size SVG sparkline: redrawn by changing two path attributes, so a refresh never
// changes the layout.
import { h } from './dom.js';

export const HISTORY = 60; // samples kept per series: 2 minutes at one sample every 2 s
const MIN_SLOTS = 12;

export function sparkline({ width = 140, height = 32, label = 'Chart' } = {}) {
  const area = h('svg:path', { class: 'spark-area', d: '' });
  const line = h('svg:path', { class: 'spark-line', d: '' });
  const dot = h('svg:circle', { class: 'spark-dot', r: '2', cx: '-10', cy: '-10' });
  const title = h('svg:title', { text: label });
  const frame = h('svg:rect', { class: 'spark-bg', x: '0', y: '0', width: String(width), height: String(height), rx: '4' });
  const base = h('svg:path', { class: 'spark-base', d: `M0 ${height - 2.5}H${width}` });
  const svg = h('svg:svg', {
    class: 'spark', width: String(width), height: String(height),
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label,
    preserveAspectRatio: 'none',
  }, title, frame, base, area, line, dot);
  return {
    el: svg,
    update(values, text) {
      title.textContent = text || label;
      svg.setAttribute('aria-label', text || label);
      if (!values.length) { line.setAttribute('d', ''); area.setAttribute('d', ''); return; }
      const max = Math.max(1, ...values);
      // The time axis spans the samples seen so far (at least MIN_SLOTS, at most HISTORY), so
      // a chart opened a few seconds ago is readable rather than a sliver at the right edge.
      const slots = Math.min(HISTORY, Math.max(MIN_SLOTS, values.length));
      const step = width / (slots - 1);
      const pad = 3;
      const offset = (slots - values.length) * step;
      const pts = values.map((v, i) => [
        offset + i * step,
        height - pad - (v / max) * (height - 2 * pad),
      ]);
      const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`).join('');
      line.setAttribute('d', d);
      area.setAttribute('d', `${d}L${pts[pts.length - 1][0].toFixed(1)} ${height}L${pts[0][0].toFixed(1)} ${height}Z`);
      const [lx, ly] = pts[pts.length - 1];
      dot.setAttribute('cx', lx.toFixed(1));
      dot.setAttribute('cy', ly.toFixed(1));
    },
  };
}

export function pushSample(history, key, value) {
  let series = history.get(key);
  if (!series) { series = []; history.set(key, series); }
  series.push(value);
  if (series.length > HISTORY) series.shift();
  return series;
}
