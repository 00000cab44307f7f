-- wardwatch schema v1: assignments, readings, quarantine, scores, alerts with their audit history.

create table patients (
    patient_id  text primary key,
    ward        text not null,
    -- RCP NEWS2 2017: SpO2 Scale 2 only for prescribed hypercapnic respiratory failure targets.
    spo2_scale  smallint not null default 1 check (spo2_scale in (1, 2)),
    created_at  timestamptz not null default now()
);

-- Which device measures which patient, and when: readings are attributed by their event time.
create table assignments (
    id          bigserial primary key,
    device_id   text not null,
    patient_id  text not null references patients (patient_id),
    valid_from  timestamptz not null,
    valid_until timestamptz,
    created_at  timestamptz not null default now(),
    check (valid_until is null or valid_until > valid_from)
);
create index assignments_device on assignments (device_id, valid_from);

-- One row per device, metric and event time: the idempotent key makes redelivery harmless.
create table readings (
    device_id      text not null,
    metric         smallint not null,
    ts             timestamptz not null,
    patient_id     text not null,
    value          double precision not null,
    utc_offset_min smallint not null,
    received_at    timestamptz not null,
    -- Received long after it was measured (a watch syncing its buffer): stored, and said so.
    late           boolean not null default false,
    primary key (device_id, metric, ts)
);
create index readings_patient on readings (patient_id, metric, ts desc);

-- Last contact per device, for the "no data" rule (wall-clock time of receipt).
create table device_contact (
    device_id        text primary key,
    last_received_at timestamptz not null,
    last_ts          timestamptz not null
);

create table quarantine (
    id          bigserial primary key,
    received_at timestamptz not null,
    topic       text not null,
    device_id   text,
    reason      text not null,
    detail      text not null,
    payload     bytea not null,
    retried_at  timestamptz
);
create index quarantine_received on quarantine (received_at desc);

create table scores (
    patient_id text not null,
    kind       text not null,
    ts         timestamptz not null,
    total      integer not null,
    risk       text not null,
    points     jsonb not null,
    missing    text[] not null,
    primary key (patient_id, kind, ts)
);

create table alerts (
    id                 bigserial primary key,
    patient_id         text not null,
    ward               text not null,
    rule               text not null,
    severity           smallint not null,
    state              text not null check (state in ('open', 'acknowledged', 'resolved')),
    summary            text not null,
    opened_at          timestamptz not null,
    updated_at         timestamptz not null,
    acknowledged_by    text,
    acknowledged_at    timestamptz,
    resolved_at        timestamptz,
    escalation_level   integer not null default 0,
    next_escalation_at timestamptz,
    cleared_at         timestamptz
);
-- One open alert per patient and rule.
create unique index alerts_one_open on alerts (patient_id, rule) where state <> 'resolved';
create index alerts_due on alerts (next_escalation_at) where state = 'open';

-- Every state change of every alert: the audit trail.
create table alert_events (
    id       bigserial primary key,
    alert_id bigint not null references alerts (id),
    at       timestamptz not null,
    kind     text not null,
    severity smallint not null,
    actor    text,
    detail   text not null
);
create index alert_events_alert on alert_events (alert_id, id);

-- Outbox: a notification is written in the same transaction as the change that causes it and
-- sent afterwards, so a crash neither drops nor doubles it (dedup_key).
create table notifications (
    id         bigserial primary key,
    alert_id   bigint not null references alerts (id),
    dedup_key  text not null unique,
    channel    text not null,
    recipient  text not null,
    body       text not null,
    created_at timestamptz not null,
    sent_at    timestamptz,
    attempts   integer not null default 0,
    outcome    text
);
create index notifications_pending on notifications (id) where sent_at is null;
