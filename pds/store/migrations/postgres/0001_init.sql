-- pds-store schema, PostgreSQL dialect. Keep in step with ../sqlite/0001_init.sql.
-- Conventions: timestamps are BIGINT milliseconds since the Unix epoch;
-- booleans are BOOLEAN; integers are BIGINT; text keys that are
-- ordered or paged use COLLATE "C" so ordering is bytewise, as in SQLite; CIDs are their canonical base32 string form;
-- handles and emails are stored lower-cased.

CREATE TABLE account (
    did                     TEXT COLLATE "C" PRIMARY KEY,
    handle                  TEXT COLLATE "C" UNIQUE,
    email                   TEXT COLLATE "C" UNIQUE,
    email_confirmed_at      BIGINT,
    password_hash           TEXT COLLATE "C",
    signing_key_ciphertext  BYTEA,
    status                  TEXT COLLATE "C" NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'deactivated', 'takendown', 'deleted')),
    takedown_ref            TEXT COLLATE "C",
    deactivated_at          BIGINT,
    delete_after            BIGINT,
    invites_disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              BIGINT NOT NULL
);

CREATE TABLE refresh_token (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    did                 TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    app_password_name   TEXT COLLATE "C",
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    next_id             TEXT COLLATE "C"
);
CREATE INDEX refresh_token_did ON refresh_token (did);
CREATE INDEX refresh_token_expires ON refresh_token (expires_at);

CREATE TABLE app_password (
    did             TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    name            TEXT COLLATE "C" NOT NULL,
    password_hash   TEXT COLLATE "C" NOT NULL,
    privileged      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (did, name)
);

CREATE TABLE invite_code (
    code            TEXT COLLATE "C" PRIMARY KEY,
    available_uses  BIGINT NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    for_account     TEXT COLLATE "C" NOT NULL,
    created_by      TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX invite_code_for_account ON invite_code (for_account);

CREATE TABLE invite_code_use (
    code        TEXT COLLATE "C" NOT NULL REFERENCES invite_code (code) ON DELETE CASCADE,
    used_by     TEXT COLLATE "C" NOT NULL,
    used_at     BIGINT NOT NULL,
    PRIMARY KEY (code, used_by)
);

CREATE TABLE email_token (
    purpose         TEXT COLLATE "C" NOT NULL,
    did             TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    token_hash      TEXT COLLATE "C" NOT NULL,
    requested_at    BIGINT NOT NULL,
    PRIMARY KEY (purpose, did)
);
CREATE UNIQUE INDEX email_token_hash ON email_token (purpose, token_hash);

CREATE TABLE reserved_signing_key (
    key_did                 TEXT COLLATE "C" PRIMARY KEY,
    did                     TEXT COLLATE "C",
    private_key_ciphertext  BYTEA NOT NULL,
    created_at              BIGINT NOT NULL
);
CREATE INDEX reserved_signing_key_did ON reserved_signing_key (did);

CREATE TABLE preference (
    did         TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    namespace   TEXT COLLATE "C" NOT NULL,
    position    BIGINT NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    value_json  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (did, namespace, position)
);

CREATE TABLE repo_root (
    did         TEXT COLLATE "C" PRIMARY KEY REFERENCES account (did),
    cid         TEXT COLLATE "C" NOT NULL,
    rev         TEXT COLLATE "C" NOT NULL,
    indexed_at  BIGINT NOT NULL
);

CREATE TABLE repo_block (
    did         TEXT COLLATE "C" NOT NULL,
    cid         TEXT COLLATE "C" NOT NULL,
    rev         TEXT COLLATE "C" NOT NULL,
    size        BIGINT NOT NULL,
    content     BYTEA NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE INDEX repo_block_rev ON repo_block (did, rev);

CREATE TABLE record (
    did             TEXT COLLATE "C" NOT NULL,
    collection      TEXT COLLATE "C" NOT NULL,
    rkey            TEXT COLLATE "C" NOT NULL,
    cid             TEXT COLLATE "C" NOT NULL,
    rev             TEXT COLLATE "C" NOT NULL,
    indexed_at      BIGINT NOT NULL,
    takedown_ref    TEXT COLLATE "C",
    PRIMARY KEY (did, collection, rkey)
);

CREATE TABLE record_blob (
    did         TEXT COLLATE "C" NOT NULL,
    blob_cid    TEXT COLLATE "C" NOT NULL,
    record_uri  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (did, blob_cid, record_uri)
);
CREATE INDEX record_blob_uri ON record_blob (did, record_uri);

CREATE TABLE blob (
    did             TEXT COLLATE "C" NOT NULL,
    cid             TEXT COLLATE "C" NOT NULL,
    mime_type       TEXT COLLATE "C" NOT NULL,
    size            BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    takedown_ref    TEXT COLLATE "C",
    PRIMARY KEY (did, cid)
);
CREATE INDEX blob_created_at ON blob (created_at);

CREATE TABLE seq_counter (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq    BIGINT NOT NULL
);
INSERT INTO seq_counter (id, last_seq) VALUES (1, 0);

CREATE TABLE repo_seq (
    seq             BIGINT PRIMARY KEY,
    did             TEXT COLLATE "C" NOT NULL,
    event_type      TEXT COLLATE "C" NOT NULL,
    event           BYTEA NOT NULL,
    invalidated     BOOLEAN NOT NULL DEFAULT FALSE,
    sequenced_at    BIGINT NOT NULL
);
CREATE INDEX repo_seq_did ON repo_seq (did, seq);
CREATE INDEX repo_seq_sequenced_at ON repo_seq (sequenced_at);

CREATE TABLE crawler_notify (
    crawler             TEXT COLLATE "C" PRIMARY KEY,
    last_notified_at    BIGINT NOT NULL
);

CREATE TABLE notification (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel             TEXT COLLATE "C" NOT NULL,
    recipient           TEXT COLLATE "C" NOT NULL,
    kind                TEXT COLLATE "C" NOT NULL,
    payload             TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    last_error          TEXT COLLATE "C",
    created_at          BIGINT NOT NULL,
    sent_at             BIGINT
);
CREATE INDEX notification_due ON notification (status, next_attempt_at);
CREATE INDEX notification_recipient ON notification (recipient, id);

CREATE TABLE report (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason_type     TEXT COLLATE "C" NOT NULL,
    reason          TEXT COLLATE "C",
    subject_json    TEXT COLLATE "C" NOT NULL,
    reported_by     TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE server_kv (
    key         TEXT COLLATE "C" PRIMARY KEY,
    value       BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE oauth_device (
    device_id       TEXT COLLATE "C" PRIMARY KEY,
    session_id      TEXT COLLATE "C" NOT NULL,
    user_agent      TEXT COLLATE "C",
    ip_address      TEXT COLLATE "C" NOT NULL,
    last_seen_at    BIGINT NOT NULL
);

CREATE TABLE oauth_account_device (
    did         TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    device_id   TEXT COLLATE "C" NOT NULL REFERENCES oauth_device (device_id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (did, device_id)
);
CREATE INDEX oauth_account_device_device ON oauth_account_device (device_id);

CREATE TABLE oauth_authorized_client (
    did         TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    client_id   TEXT COLLATE "C" NOT NULL,
    data_json   TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (did, client_id)
);

CREATE TABLE oauth_authorization_request (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    did                 TEXT COLLATE "C",
    device_id           TEXT COLLATE "C",
    client_id           TEXT COLLATE "C" NOT NULL,
    client_auth_json    TEXT COLLATE "C",
    parameters_json     TEXT COLLATE "C" NOT NULL,
    expires_at          BIGINT NOT NULL,
    code                TEXT COLLATE "C" UNIQUE
);
CREATE INDEX oauth_authorization_request_expires ON oauth_authorization_request (expires_at);

CREATE TABLE oauth_token (
    token_id                TEXT COLLATE "C" PRIMARY KEY,
    did                     TEXT COLLATE "C" NOT NULL REFERENCES account (did) ON DELETE CASCADE,
    client_id               TEXT COLLATE "C" NOT NULL,
    client_auth_json        TEXT COLLATE "C" NOT NULL,
    device_id               TEXT COLLATE "C",
    parameters_json         TEXT COLLATE "C" NOT NULL,
    details_json            TEXT COLLATE "C",
    code                    TEXT COLLATE "C" UNIQUE,
    current_refresh_token   TEXT COLLATE "C" UNIQUE,
    scope                   TEXT COLLATE "C",
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL
);
CREATE INDEX oauth_token_did ON oauth_token (did);

CREATE TABLE oauth_used_refresh_token (
    refresh_token   TEXT COLLATE "C" PRIMARY KEY,
    token_id        TEXT COLLATE "C" NOT NULL REFERENCES oauth_token (token_id) ON DELETE CASCADE
);
CREATE INDEX oauth_used_refresh_token_token ON oauth_used_refresh_token (token_id);

CREATE TABLE oauth_replay (
    namespace   TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX oauth_replay_expires ON oauth_replay (expires_at);
