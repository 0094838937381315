//! The MST node block format:
//! `{e: [{k: bytes, p: int, t: link|null, v: link}], l: link|null}`.

use atproto_data::cbor::{Decoder, Encoder};
use atproto_data::{DecodeError, DecodeErrorKind};
use cid::Cid;

use super::key::{common_prefix_len, key_height};

/// One decoded entry of a node block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The full key (prefix compression undone).
    pub key: String,
    /// The value (a record CID).
    pub value: Cid,
    /// The subtree to the right of this entry.
    pub right: Option<Cid>,
}

/// A decoded node block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeData {
    /// The subtree left of the first entry.
    pub left: Option<Cid>,
    /// Entries in key order.
    pub entries: Vec<NodeEntry>,
}

/// Why a node block is not a valid MST node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Not the DAG-CBOR node schema.
    #[error(transparent)]
    Cbor(#[from] DecodeError),
    /// Schema-valid but structurally wrong.
    #[error("{0}")]
    Structure(String),
}

impl NodeData {
    /// The node's height, from its first entry (None for a node without entries).
    pub fn height(&self) -> Option<u32> {
        self.entries.first().map(|e| key_height(e.key.as_bytes()))
    }
}

/// Encode a node from its parts: `left`, then `(key, value, right)` entries
/// in key order. Canonical DAG-CBOR.
pub(crate) fn encode_node<'a>(
    left: Option<&Cid>,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a Cid, Option<&'a Cid>)>,
) -> Vec<u8> {
    let mut e = Encoder::with_capacity(16 + entries.len() * 96);
    e.map(2);
    e.text("e");
    e.array(entries.len());
    let mut prev: &[u8] = &[];
    for (key, value, right) in entries {
        let kb = key.as_bytes();
        let p = common_prefix_len(prev, kb);
        e.map(4);
        e.text("k");
        e.bytes(&kb[p..]);
        e.text("p");
        e.uint(p as u64);
        e.text("t");
        e.opt_link(right);
        e.text("v");
        e.link(value);
        prev = kb;
    }
    e.text("l");
    e.opt_link(left);
    e.into_bytes()
}

/// Encode a [`NodeData`].
pub fn encode_node_data(node: &NodeData) -> Vec<u8> {
    encode_node(
        node.left.as_ref(),
        node.entries
            .iter()
            .map(|e| (e.key.as_str(), &e.value, e.right.as_ref())),
    )
}

/// Decode a node block strictly: canonical DAG-CBOR, maximal prefix
/// compression, strictly increasing UTF-8 keys, all entries of one height,
/// and no subtree pointers at height 0.
pub fn decode_node(bytes: &[u8]) -> Result<NodeData, NodeError> {
    let mut d = Decoder::new(bytes);
    let mut node = NodeData::default();
    let mut prev_key: Vec<u8> = Vec::new();
    let mut structure: Option<String> = None;
    d.read_struct(&["e", "l"], &[true, true], |i, d| {
        match i {
            0 => {
                let n = d.array_len()?;
                node.entries.reserve(n.min(1024) as usize);
                for idx in 0..n {
                    let mut suffix: &[u8] = &[];
                    let mut p = 0u64;
                    let mut right = None;
                    let mut value = None;
                    let entry_at = d.position();
                    d.read_struct(&["k", "p", "t", "v"], &[true; 4], |j, d| {
                        match j {
                            0 => suffix = d.bytes()?,
                            1 => p = d.uint()?,
                            2 => right = d.opt_link()?,
                            _ => value = Some(d.link()?),
                        }
                        Ok(())
                    })?;
                    let Some(value) = value else {
                        return Err(DecodeError::new(
                            entry_at,
                            DecodeErrorKind::MissingField("v"),
                        ));
                    };
                    if structure.is_some() {
                        continue;
                    }
                    let p = p as usize;
                    if p > prev_key.len() {
                        structure = Some(format!(
                            "entry {idx}: prefix length {p} exceeds previous key"
                        ));
                        continue;
                    }
                    let mut key = Vec::with_capacity(p + suffix.len());
                    key.extend_from_slice(&prev_key[..p]);
                    key.extend_from_slice(suffix);
                    if idx > 0 && common_prefix_len(&prev_key, &key) != p {
                        structure = Some(format!("entry {idx}: non-canonical prefix compression"));
                        continue;
                    }
                    if idx > 0 && key <= prev_key {
                        structure = Some(format!("entry {idx}: keys out of order"));
                        continue;
                    }
                    let Ok(key_str) = String::from_utf8(key.clone()) else {
                        structure = Some(format!("entry {idx}: key is not UTF-8"));
                        continue;
                    };
                    prev_key = key;
                    node.entries.push(NodeEntry {
                        key: key_str,
                        value,
                        right,
                    });
                }
            }
            _ => node.left = d.opt_link()?,
        }
        Ok(())
    })?;
    d.finish()?;
    if let Some(s) = structure {
        return Err(NodeError::Structure(s));
    }
    if let Some(h) = node.height() {
        for e in &node.entries[1..] {
            if key_height(e.key.as_bytes()) != h {
                return Err(NodeError::Structure(format!(
                    "key {:?} does not belong at height {h}",
                    e.key
                )));
            }
        }
        if h == 0 && (node.left.is_some() || node.entries.iter().any(|e| e.right.is_some())) {
            return Err(NodeError::Structure(
                "a node at height 0 has a subtree".into(),
            ));
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_data::cid_for_dag_cbor;

    #[test]
    fn empty_node() {
        let bytes = encode_node_data(&NodeData::default());
        assert_eq!(bytes, [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6]);
        assert_eq!(
            cid_for_dag_cbor(&bytes).to_string(),
            "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
        );
        assert_eq!(decode_node(&bytes).expect("decodes"), NodeData::default());
    }

    #[test]
    fn round_trip_with_prefixes() {
        let v = cid_for_dag_cbor(b"\xa0");
        let node = NodeData {
            left: None,
            entries: [
                "com.example.record/3jqfcqzm3fo2j",
                "com.example.record/3jqfcqzm3fp2j",
            ]
            .iter()
            .filter(|k| key_height(k.as_bytes()) == 0)
            .map(|k| NodeEntry {
                key: k.to_string(),
                value: v,
                right: None,
            })
            .collect(),
        };
        let bytes = encode_node_data(&node);
        assert_eq!(decode_node(&bytes).expect("decodes"), node);
    }

    #[test]
    fn rejects_schema_violations() {
        let kind = |b: &[u8]| match decode_node(b) {
            Err(NodeError::Cbor(e)) => e.kind,
            other => panic!("{b:02x?}: {other:?}"),
        };
        // {e: []} without l.
        assert_eq!(
            kind(&[0xa1, 0x61, 0x65, 0x80]),
            DecodeErrorKind::MissingField("l")
        );
        // {e: [], l: null, x: null}
        assert_eq!(
            kind(&[0xa3, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6, 0x61, 0x78, 0xf6]),
            DecodeErrorKind::UnexpectedField("x".into())
        );
        // {l: null, e: []}: out of canonical order, so e is missing before l.
        assert_eq!(
            kind(&[0xa2, 0x61, 0x6c, 0xf6, 0x61, 0x65, 0x80]),
            DecodeErrorKind::MissingField("e")
        );
        // l is a string, not a link.
        assert_eq!(
            kind(&[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0x60]),
            DecodeErrorKind::UnexpectedType {
                expected: "a CID link (tag 42)",
                found: "text string"
            }
        );
        // Trailing byte.
        assert_eq!(
            kind(&[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6, 0x00]),
            DecodeErrorKind::TrailingBytes(1)
        );
        // An entry without v.
        let mut e = Encoder::new();
        e.map(2);
        e.text("e");
        e.array(1);
        e.map(3);
        e.text("k");
        e.bytes(b"a");
        e.text("p");
        e.uint(0);
        e.text("t");
        e.null();
        e.text("l");
        e.null();
        assert_eq!(kind(e.as_bytes()), DecodeErrorKind::MissingField("v"));
    }
}
