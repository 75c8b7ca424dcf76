//! Small readers for raw Redis replies that typed conversions do not cover (stream entries whose
//! values are binary, entries deleted while pending, RESP2 and RESP3 shapes alike).

use redis::Value;

use crate::domain::StreamId;

/// A stream entry: its id and field/value pairs, or None for the fields of an entry that was
/// deleted while still pending in a consumer group.
pub(super) struct Entry {
    pub id: StreamId,
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field called `name`, in order (an attempt log entry has several).
    pub fn fields_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .flatten()
            .filter(move |(key, _)| key == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }

    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }
}

pub(super) fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

pub(super) fn items(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items.iter().collect()),
        Value::Map(pairs) => Some(pairs.iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// Reads an XRANGE reply (or one stream's entries in an XREADGROUP reply).
pub(super) fn entries(value: &Value) -> Result<Vec<Entry>, String> {
    let Some(list) = items(value) else {
        return Ok(Vec::new());
    };
    list.into_iter().map(entry).collect()
}

/// Reads one `[id, fields, ...]` array (extra elements are ignored).
pub(super) fn entry(value: &Value) -> Result<Entry, String> {
    let parts = items(value).ok_or("stream entry is not an array")?;
    let id = parts
        .first()
        .and_then(|v| bytes(v))
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(StreamId::parse)
        .ok_or("stream entry without an id")?;
    let fields = match parts.get(1) {
        None | Some(Value::Nil) => None,
        Some(value) => {
            let flat = items(value).ok_or("stream entry fields are not an array")?;
            Some(
                flat.chunks(2)
                    .filter_map(|pair| Some((bytes(pair.first()?)?.to_vec(), bytes(pair.get(1)?)?.to_vec())))
                    .collect(),
            )
        }
    };
    Ok(Entry { id, fields })
}

/// Reads an XREADGROUP reply for a single stream: Nil (the block timed out) reads as empty.
pub(super) fn read_group_entries(value: &Value) -> Result<Vec<Entry>, String> {
    let Some(streams) = items(value) else {
        return Ok(Vec::new());
    };
    match streams.as_slice() {
        // RESP2: [[name, entries]]
        [stream] => match items(stream).as_deref() {
            Some([_, list]) => entries(list),
            _ => Err("unexpected XREADGROUP reply".into()),
        },
        // RESP3: {name: entries}
        [_, list] => entries(list),
        [] => Ok(Vec::new()),
        _ => Err("XREADGROUP replied for several streams".into()),
    }
}
