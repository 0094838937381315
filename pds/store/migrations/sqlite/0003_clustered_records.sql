-- Records and repository blocks kept in their primary key's order (WITHOUT
-- ROWID). With a rowid, each row was reached through the primary key's index
-- and then the table: a listRecords page of 50 made three B-tree descents per
-- record. Clustered, the page is one range scan of `record` and one descent
-- per record block. The rows are small (record blocks and MST nodes of a few
-- hundred bytes, bounded by the record size limit), as WITHOUT ROWID wants.
CREATE TABLE repo_block_clustered (
    did         TEXT NOT NULL,
    cid         TEXT NOT NULL,
    rev         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    content     BLOB NOT NULL,
    PRIMARY KEY (did, cid)
) STRICT, WITHOUT ROWID;
INSERT INTO repo_block_clustered (did, cid, rev, size, content)
    SELECT did, cid, rev, size, content FROM repo_block;
DROP TABLE repo_block;
ALTER TABLE repo_block_clustered RENAME TO repo_block;
CREATE INDEX repo_block_rev ON repo_block (did, rev);

CREATE TABLE record_clustered (
    did             TEXT NOT NULL,
    collection      TEXT NOT NULL,
    rkey            TEXT NOT NULL,
    cid             TEXT NOT NULL,
    rev             TEXT NOT NULL,
    indexed_at      INTEGER NOT NULL,
    takedown_ref    TEXT,
    PRIMARY KEY (did, collection, rkey)
) STRICT, WITHOUT ROWID;
INSERT INTO record_clustered (did, collection, rkey, cid, rev, indexed_at, takedown_ref)
    SELECT did, collection, rkey, cid, rev, indexed_at, takedown_ref FROM record;
DROP TABLE record;
ALTER TABLE record_clustered RENAME TO record;
CREATE INDEX record_did_cid ON record (did, cid);
