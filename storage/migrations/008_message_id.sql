-- The id a notification went out under, set when a sender first hands it to a channel: a
-- resend after a crash mid-send, or a retry, repeats it, so the receiver can drop the repeat.
alter table notifications add column message_id text;
