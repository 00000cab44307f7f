-- A raw accelerometer's calibration (signals.activity, van Hees et al. 2014), kept per device:
-- the still windows it is fitted to accumulate over days (a wrist rarely visits enough
-- orientations in an hour), and the last good fit serves until a better one is possible.
create table accel_calibration (
    device_id   text primary key,
    still_means jsonb not null,            -- [[x, y, z], ...] in g, one per orientation cell
    offset_g    double precision[],        -- null until the means allow a fit
    scale       double precision[],
    updated_at  timestamptz not null
);
