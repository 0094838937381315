-- pds-store schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql.
-- Conventions: timestamps are INTEGER milliseconds since the Unix epoch;
-- booleans are INTEGER 0/1; CIDs are their canonical base32 string form;
-- handles and emails are stored lower-cased.

CREATE TABLE account (
    did                     TEXT PRIMARY KEY,
    handle                  TEXT UNIQUE,
    email                   TEXT UNIQUE,
    email_confirmed_at      INTEGER,
    password_hash           TEXT,
    signing_key_ciphertext  BLOB,
    status                  TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'deactivated', 'takendown', 'deleted')),
    takedown_ref            TEXT,
    deactivated_at          INTEGER,
    delete_after            INTEGER,
    invites_disabled        INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_token (
    id                  TEXT PRIMARY KEY,
    did                 TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    app_password_name   TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    next_id             TEXT
) STRICT;
CREATE INDEX refresh_token_did ON refresh_token (did);
CREATE INDEX refresh_token_expires ON refresh_token (expires_at);

CREATE TABLE app_password (
    did             TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    privileged      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (did, name)
) STRICT;

CREATE TABLE invite_code (
    code            TEXT PRIMARY KEY,
    available_uses  INTEGER NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    for_account     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX invite_code_for_account ON invite_code (for_account);

CREATE TABLE invite_code_use (
    code        TEXT NOT NULL REFERENCES invite_code (code) ON DELETE CASCADE,
    used_by     TEXT NOT NULL,
    used_at     INTEGER NOT NULL,
    PRIMARY KEY (code, used_by)
) STRICT;

CREATE TABLE email_token (
    purpose         TEXT NOT NULL,
    did             TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL,
    requested_at    INTEGER NOT NULL,
    PRIMARY KEY (purpose, did)
) STRICT;
CREATE UNIQUE INDEX email_token_hash ON email_token (purpose, token_hash);

CREATE TABLE reserved_signing_key (
    key_did                 TEXT PRIMARY KEY,
    did                     TEXT,
    private_key_ciphertext  BLOB NOT NULL,
    created_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX reserved_signing_key_did ON reserved_signing_key (did);

CREATE TABLE preference (
    did         TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    namespace   TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value_json  TEXT NOT NULL,
    PRIMARY KEY (did, namespace, position)
) STRICT;

CREATE TABLE repo_root (
    did         TEXT PRIMARY KEY REFERENCES account (did),
    cid         TEXT NOT NULL,
    rev         TEXT NOT NULL,
    indexed_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE repo_block (
    did         TEXT NOT NULL,
    cid         TEXT NOT NULL,
    rev         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    content     BLOB NOT NULL,
    PRIMARY KEY (did, cid)
) STRICT;
CREATE INDEX repo_block_rev ON repo_block (did, rev);

CREATE TABLE record (
    did             TEXT NOT NULL,
    collection      TEXT NOT NULL,
    rkey            TEXT NOT NULL,
    cid             TEXT NOT NULL,
    rev             TEXT NOT NULL,
    indexed_at      INTEGER NOT NULL,
    takedown_ref    TEXT,
    PRIMARY KEY (did, collection, rkey)
) STRICT;

CREATE TABLE record_blob (
    did         TEXT NOT NULL,
    blob_cid    TEXT NOT NULL,
    record_uri  TEXT NOT NULL,
    PRIMARY KEY (did, blob_cid, record_uri)
) STRICT;
CREATE INDEX record_blob_uri ON record_blob (did, record_uri);

CREATE TABLE blob (
    did             TEXT NOT NULL,
    cid             TEXT NOT NULL,
    mime_type       TEXT NOT NULL,
    size            INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    takedown_ref    TEXT,
    PRIMARY KEY (did, cid)
) STRICT;
CREATE INDEX blob_created_at ON blob (created_at);

CREATE TABLE seq_counter (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq    INTEGER NOT NULL
) STRICT;
INSERT INTO seq_counter (id, last_seq) VALUES (1, 0);

CREATE TABLE repo_seq (
    seq             INTEGER PRIMARY KEY,
    did             TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event           BLOB NOT NULL,
    invalidated     INTEGER NOT NULL DEFAULT 0,
    sequenced_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX repo_seq_did ON repo_seq (did, seq);
CREATE INDEX repo_seq_sequenced_at ON repo_seq (sequenced_at);

CREATE TABLE crawler_notify (
    crawler             TEXT PRIMARY KEY,
    last_notified_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE notification (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    channel             TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    kind                TEXT NOT NULL,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL,
    last_error          TEXT,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER
) STRICT;
CREATE INDEX notification_due ON notification (status, next_attempt_at);
CREATE INDEX notification_recipient ON notification (recipient, id);

CREATE TABLE report (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reason_type     TEXT NOT NULL,
    reason          TEXT,
    subject_json    TEXT NOT NULL,
    reported_by     TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE server_kv (
    key         TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_device (
    device_id       TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL,
    user_agent      TEXT,
    ip_address      TEXT NOT NULL,
    last_seen_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_account_device (
    did         TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    device_id   TEXT NOT NULL REFERENCES oauth_device (device_id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (did, device_id)
) STRICT;
CREATE INDEX oauth_account_device_device ON oauth_account_device (device_id);

CREATE TABLE oauth_authorized_client (
    did         TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    data_json   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (did, client_id)
) STRICT;

CREATE TABLE oauth_authorization_request (
    id                  TEXT PRIMARY KEY,
    did                 TEXT,
    device_id           TEXT,
    client_id           TEXT NOT NULL,
    client_auth_json    TEXT,
    parameters_json     TEXT NOT NULL,
    expires_at          INTEGER NOT NULL,
    code                TEXT UNIQUE
) STRICT;
CREATE INDEX oauth_authorization_request_expires ON oauth_authorization_request (expires_at);

CREATE TABLE oauth_token (
    token_id                TEXT PRIMARY KEY,
    did                     TEXT NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    client_id               TEXT NOT NULL,
    client_auth_json        TEXT NOT NULL,
    device_id               TEXT,
    parameters_json         TEXT NOT NULL,
    details_json            TEXT,
    code                    TEXT UNIQUE,
    current_refresh_token   TEXT UNIQUE,
    scope                   TEXT,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_token_did ON oauth_token (did);

CREATE TABLE oauth_used_refresh_token (
    refresh_token   TEXT PRIMARY KEY,
    token_id        TEXT NOT NULL REFERENCES oauth_token (token_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX oauth_used_refresh_token_token ON oauth_used_refresh_token (token_id);

CREATE TABLE oauth_replay (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT;
CREATE INDEX oauth_replay_expires ON oauth_replay (expires_at);
