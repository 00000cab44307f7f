-- wardwatch schema v4: the notification outbox retries with backoff, dead-letters what it cannot
-- deliver, records inhibited notifications, and patients may have a bed.

-- pending: waiting to be sent (or retried from next_attempt_at); sent: delivered;
-- dead: gave up (refused for good, or the last attempt failed); inhibited: muted by a more severe
-- open alert of the same patient (docs/notifications.md). Only pending rows are ever claimed.
alter table notifications
    add column state text not null default 'pending'
        check (state in ('pending', 'sent', 'dead', 'inhibited')),
    -- When the row may next be tried: null means at once (after grouping). Also the lease a
    -- sender takes while it talks to the channel, so another worker does not send it twice.
    add column next_attempt_at timestamptz,
    add column dead_at timestamptz;

-- Rows written before this migration: delivered ones are sent, exhausted ones dead.
update notifications set state = 'sent' where sent_at is not null;
update notifications set state = 'dead', dead_at = created_at
    where sent_at is null and attempts >= 10;

drop index notifications_pending;
create index notifications_due on notifications (next_attempt_at nulls first, id)
    where state = 'pending';

-- A bed or room label shown in notifications; optional (a virtual ward's patient is at home).
alter table patients add column bed text;
