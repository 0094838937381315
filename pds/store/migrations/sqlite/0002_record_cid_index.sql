-- Commits delete a replaced or deleted record's block only when no other
-- record of the repository names the same CID: that lookup needs this index.
CREATE INDEX record_did_cid ON record (did, cid);
