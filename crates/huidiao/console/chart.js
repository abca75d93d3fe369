// Deliveries per minute over the last hour, stacked by outcome: an inline SVG drawn from the
// delivery list the console already reads, with no chart library.

import { formatTime, s } from './dom.js';
import { statusLabel, t } from './i18n.js';

const MINUTE = 60_000;
const MINUTES = 60;

/** The outcomes drawn, bottom to top; cancelled and skipped share one colour. */
export const OUTCOMES = ['succeeded', 'failed', 'pending', 'other'];

const outcomeOf = (status) => (OUTCOMES.includes(status) ? status : 'other');

export const outcomeLabel = (outcome) => (outcome === 'other' ? t('chart.other') : statusLabel(outcome));

/** Counts deliveries by the minute they were created in, for the hour ending with this minute. */
export function perMinute(deliveries, now) {
  const end = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  const start = end - MINUTES * MINUTE;
  const buckets = Array.from({ length: MINUTES }, (_, i) => ({
    start: start + i * MINUTE,
    succeeded: 0,
    failed: 0,
    pending: 0,
    other: 0,
  }));
  for (const d of deliveries) {
    if (d.created_at < start || d.created_at >= end) continue;
    buckets[Math.floor((d.created_at - start) / MINUTE)][outcomeOf(d.status)] += 1;
  }
  return buckets;
}

export function totals(buckets) {
  const sum = { succeeded: 0, failed: 0, pending: 0, other: 0 };
  for (const bucket of buckets) for (const outcome of OUTCOMES) sum[outcome] += bucket[outcome];
  return sum;
}

/** 1, 2 or 5 times a power of ten, at least `n`: a round top for the y axis. */
function niceCeiling(n) {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= n);
}

const HEIGHT = 180;
const LEFT = 34;
const RIGHT = 6;
const TOP = 10;
const BOTTOM = 24;

/**
 * The chart as an SVG element, `width` pixels wide (the width it is shown at, so its text keeps
 * its size on any screen); `label` is what screen readers hear instead of the bars.
 */
export function chartSvg(buckets, label, width) {
  const full = Math.max(240, Math.round(width));
  const plotWidth = full - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = plotWidth / MINUTES;
  const max = niceCeiling(Math.max(0, ...buckets.map((b) => OUTCOMES.reduce((n, o) => n + b[o], 0))));
  const y = (value) => TOP + plotHeight - (value / max) * plotHeight;

  const grid = [0, max / 2, max]
    .filter((value) => Number.isInteger(value))
    .map((value) => [
      s('line', { class: 'grid', x1: LEFT, x2: full - RIGHT, y1: y(value), y2: y(value) }),
      s('text', { class: 'axis', x: LEFT - 6, y: y(value) + 4, 'text-anchor': 'end' }, value),
    ]);

  const bars = buckets.map((bucket, i) => {
    let base = 0;
    const rects = OUTCOMES.filter((o) => bucket[o] > 0).map((outcome) => {
      const top = base + bucket[outcome];
      const rect = s('rect', {
        class: `bar status-${outcome}`,
        x: LEFT + i * slot + 1,
        width: Math.max(1, slot - 2),
        y: y(top),
        height: y(base) - y(top),
      });
      base = top;
      return rect;
    });
    if (rects.length === 0) return null;
    const parts = OUTCOMES.filter((o) => bucket[o] > 0).map((o) => `${bucket[o]} ${outcomeLabel(o)}`);
    return s('g', {}, s('title', {}, `${formatTime(bucket.start)}: ${parts.join(', ')}`), rects);
  });

  const xLabels = [
    [LEFT, 'start', t('chart.minutesAgo', { n: 60 })],
    [LEFT + plotWidth / 2, 'middle', t('chart.minutesAgo', { n: 30 })],
    [full - RIGHT, 'end', t('chart.now')],
  ].map(([x, anchor, text]) => s('text', { class: 'axis', x, y: HEIGHT - 6, 'text-anchor': anchor }, text));

  return s(
    'svg',
    { class: 'chart', viewBox: `0 0 ${full} ${HEIGHT}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' },
    grid,
    bars,
    s('line', { class: 'baseline', x1: LEFT, x2: full - RIGHT, y1: y(0), y2: y(0) }),
    xLabels,
  );
}
