// A channel's review of a published bot (coze-callbacks.md §6), shown in a connector app's
// delivery of bot.published: its current state, then every change, oldest first.

import { formatDateTime, h } from './dom.js';
import { t } from './i18n.js';

/** The label of an audit_status: 0 (no review in the answer), 1 in review, 2 approved, 3 rejected. */
export function auditLabel(status) {
  return t(`review.status.${status}`);
}

/** The badge colours of the delivery statuses: approved is good, in review waits, the rest failed. */
const BADGE = { 0: 'status-failed', 1: 'status-pending', 2: 'status-succeeded', 3: 'status-failed' };

/** The review section of a delivery's detail, or nothing when the delivery has no review. */
export function reviewSection(review) {
  if (!review) return null;
  const fact = (label, ...value) => [h('dt', {}, label), h('dd', {}, ...value)];
  const badge = (status) => h('span', { class: `badge ${BADGE[status] ?? 'status-other'}` }, auditLabel(status));
  return h(
    'section',
    { class: 'review', 'aria-label': t('review.title') },
    h('h3', {}, t('review.title')),
    h(
      'dl',
      { class: 'facts' },
      fact(t('review.status'), badge(review.audit_status)),
      review.audit_status === 0 && fact(t('review.meaning'), t('review.noReview')),
      review.reason && fact(t('review.reason'), review.reason),
      review.share_link && fact(t('review.shareLink'), h('code', { class: 'wrap' }, review.share_link)),
      fact(t('review.source'), t(`review.source.${review.source}`)),
      fact(t('detail.eventId'), h('code', { class: 'wrap' }, review.event_id)),
      fact(t('detail.updated'), formatDateTime(review.updated_at)),
    ),
    h('h4', {}, t('review.history', { n: review.history.length })),
    h(
      'ol',
      { class: 'review-history' },
      review.history.map((entry) =>
        h(
          'li',
          {},
          h('span', {}, formatDateTime(entry.at)),
          badge(entry.audit_status),
          h('span', { class: 'muted' }, t(`review.source.${entry.source}`)),
          entry.reason && h('span', {}, entry.reason),
        ),
      ),
    ),
  );
}
