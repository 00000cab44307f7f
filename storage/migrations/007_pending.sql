-- A rule's condition that holds but has not yet lasted the rule's "for" duration (alerts.policy):
-- when it began, so that a restart, or another worker, measures the duration from the same
-- moment. One row per patient and rule; deleted when the alert fires or the condition goes.
create table alert_pending (
    patient_id text not null,
    rule       text not null,
    since      timestamptz not null,
    primary key (patient_id, rule)
);
