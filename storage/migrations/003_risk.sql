-- Behaviour-based risk (signals.risk): one row per patient and day, holding that day's features,
-- its score with each feature's contribution, and the patient's model state (baselines and
-- CUSUM) after the day. The next day continues from the last row, so a restart, or another
-- worker, neither loses a baseline nor scores a day twice.
create table risk_days (
    patient_id    text not null references patients (patient_id),
    day           date not null,
    features      jsonb not null,   -- {feature: value}, null where the day could not support one
    score         real not null,    -- 0-100
    deviation_sd  real not null,    -- weighted mean concerning deviation, the CUSUM's input
    cusum         real not null,
    alarm         boolean not null, -- sustained deviation: raises the "risk" alert
    contributions jsonb not null,   -- [{feature, value, usual, z, points}], largest first
    missing       text[] not null,
    learning      text[] not null,
    state         jsonb not null,   -- signals.risk.PatientRisk.snapshot() after this day
    computed_at   timestamptz not null,
    primary key (patient_id, day)
);
