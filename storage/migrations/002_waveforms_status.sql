-- wardwatch schema v2: waveform chunks, device status reports, and devices' message numbers.

-- One row per chunk, its samples as one bytea: float32 little-endian, row-major (x, y, z of a
-- sample together), 4 * n_samples * channels bytes. A row per sample would spend some 40 bytes
-- (tuple header, device, time) and an index entry on each 4-byte value; a row per chunk spends
-- them once. The key makes redelivery harmless, as for readings.
create table waveforms (
    device_id   text not null,
    kind        text not null check (kind in ('ppg', 'ecg', 'accel')),
    start_ts    timestamptz not null,
    fs_hz       double precision not null check (fs_hz > 0),
    n_samples   integer not null check (n_samples > 0),
    channels    smallint not null check (channels in (1, 3)),
    unit        text not null,
    data        bytea not null check (octet_length(data) = 4 * n_samples * channels),
    received_at timestamptz not null,
    seq         bigint,
    primary key (device_id, kind, start_ts)
);
-- Out of line and uncompressed: sensor noise in float32 barely compresses (pglz would spend CPU
-- on every chunk for little), and a reader can fetch part of a chunk with substring().
alter table waveforms alter column data set storage external;

-- One row per status report. The latest is found through the key (device_id, ts desc).
create table device_status (
    device_id      text not null,
    ts             timestamptz not null,
    battery_pct    real check (battery_pct between 0 and 100),
    worn           boolean,
    firmware       text check (char_length(firmware) between 1 and 64),
    clock_offset_s real,  -- device clock minus receipt time: positive = device ahead
    seq            bigint,
    received_at    timestamptz not null,
    primary key (device_id, ts)
);

-- Each message number a device sent, per stream, for finding lost messages (docs/waveforms.md).
-- One small row per numbered message: prune rows older than the gap-detection window.
create table message_seq (
    device_id   text not null,
    stream      text not null check (stream in ('vitals', 'waveform', 'status')),
    seq         bigint not null check (seq >= 0),
    received_at timestamptz not null,
    primary key (device_id, stream, seq)
);
create index message_seq_received on message_seq (received_at);
