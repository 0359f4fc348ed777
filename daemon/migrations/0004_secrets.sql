-- Names of the secrets set through kromad and the store that holds each value. Values are never
-- stored in this database.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    store      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
