-- How far each device's waveforms have been turned into derived vital signs (signals.derived):
-- the next run starts there, so every minute is derived once however often the job ticks.
create table derived_progress (
    device_id  text not null,
    what       text not null,  -- e.g. 'resp_rate' (breathing rate from PPG)
    until_ts   timestamptz not null,
    primary key (device_id, what)
);
