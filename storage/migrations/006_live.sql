-- wardwatch schema v6: every alert change is announced on the 'wardwatch_alerts' channel, so that
-- each dashboard process (storage.live) pushes it to its browsers at once, whichever worker wrote
-- it. The notification is sent at commit (never for a rolled-back change) and carries ids and
-- codes only: the row itself stays in alert_events, where a reconnecting browser catches up by id.
create function wardwatch_announce_alert_event() returns trigger
language plpgsql as $$
begin
    perform pg_notify(
        'wardwatch_alerts',
        json_build_object(
            'id', new.id,
            'alert_id', new.alert_id,
            'kind', new.kind,
            'severity', new.severity,
            'ward', (select ward from alerts where id = new.alert_id)
        )::text
    );
    return null;
end;
$$;

create trigger alert_events_announce
    after insert on alert_events
    for each row execute function wardwatch_announce_alert_event();
