-- When a user read a message; a message without a row here is unread for them.
CREATE TABLE message_reads (
    message_id TEXT NOT NULL REFERENCES messages (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    read_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX messages_recipient ON messages (recipient_kind, recipient);
