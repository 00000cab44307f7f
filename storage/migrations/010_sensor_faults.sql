-- Vital-sign sensors found frozen or noisy over the last hour (signals.quality, jobs.check_sensors):
-- while a row is here, ingest scores that parameter as not measured, never as the stuck value.
create table sensor_faults (
    patient_id text not null,
    metric     smallint not null,
    device_id  text not null,
    label      text not null,  -- 'stuck' or 'noisy'
    since      timestamptz not null,
    primary key (patient_id, metric)
);
