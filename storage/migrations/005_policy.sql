-- wardwatch schema v5: the alerting policy as versioned text, and clinicians' patient overrides.

-- Every policy ever in force, newest = highest version. The text is kept as written (comments
-- and all) so that what a ward reviews is what it wrote; workers parse it (alerts.policy).
-- Only text that parsed is stored: a refused policy never becomes a version.
create table policy_versions (
    version integer primary key check (version > 0),
    text    text not null,
    set_by  text not null check (char_length(set_by) between 1 and 200),
    set_at  timestamptz not null
);

-- A patient's overrides, one row per change, never updated: the latest row is in force and the
-- rows are the audit trail (who, when, why). patients.spo2_scale mirrors the latest row's scale
-- so that ingest, which already reads it, scores with it.
create table patient_overrides (
    id                   bigserial primary key,
    patient_id           text not null references patients (patient_id),
    -- RCP NEWS2 2017: Scale 2 only for prescribed hypercapnic respiratory failure targets.
    spo2_scale           smallint not null check (spo2_scale in (1, 2)),
    spo2_target_low_pct  smallint,
    spo2_target_high_pct smallint,
    pause_reason         text,
    pause_since          timestamptz,
    pause_until          timestamptz,
    set_by               text not null check (char_length(set_by) between 1 and 200),
    reason               text not null check (char_length(reason) between 1 and 1000),
    set_at               timestamptz not null,
    check ((spo2_target_low_pct is null) = (spo2_target_high_pct is null)),
    check (spo2_target_low_pct < spo2_target_high_pct),
    check ((pause_until is null) = (pause_reason is null)
           and (pause_until is null) = (pause_since is null)),
    check (pause_since < pause_until)
);
create index patient_overrides_latest on patient_overrides (patient_id, id desc);
