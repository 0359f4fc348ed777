-- Chat sessions and their messages; a voice transcript's recording is an `audio` asset. An
-- instruction remembers the message that produced it.

CREATE TABLE chat_sessions (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX chat_sessions_by_activity ON chat_sessions(project_id, updated_at);

CREATE TABLE chat_messages (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    role           TEXT NOT NULL,
    text           TEXT NOT NULL,
    audio_asset_id TEXT REFERENCES assets(id) ON DELETE SET NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (session_id, seq)
) STRICT;

ALTER TABLE instructions ADD COLUMN message_id TEXT REFERENCES chat_messages(id) ON DELETE SET NULL;
CREATE INDEX instructions_by_message ON instructions(message_id) WHERE message_id IS NOT NULL;
