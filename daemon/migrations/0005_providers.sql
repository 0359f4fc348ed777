-- Accounts at image APIs. The key lives in the secret named by secret_name, never here.
CREATE TABLE providers (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    default_model TEXT NOT NULL,
    organization  TEXT,
    secret_name   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
