//! Binary-protocol frames written out by hand, header field by header
//! field, so that the tests never share the server's encoder.

/// One frame: a 24-byte header, then extras, key and value.
#[allow(clippy::too_many_arguments)]
fn frame(
    magic: u8,
    op: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut v = vec![magic, op];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.push(0); // data type
    v.extend_from_slice(&status.to_be_bytes()); // vbucket in requests
    v.extend_from_slice(&(body as u32).to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

/// A request frame (magic 0x80).
pub fn request(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    frame(0x80, op, 0, opaque, cas, extras, key, value)
}

/// A response frame (magic 0x81).
pub fn response(
    op: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    frame(0x81, op, status, opaque, cas, extras, key, value)
}
