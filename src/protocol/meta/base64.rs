//! Base64 (RFC 4648 alphabet, padded) for binary keys (`b`), decoded with
//! memcached's leniency so the same keys name the same items.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes `input` into `out` the way memcached does, returning the
/// decoded length; `None` when it decodes to nothing or does not fit.
///
/// memcached's decoder skips bytes outside the alphabet, needs a non-zero
/// multiple of four alphabet characters (`=` counts), reads `=` as zero
/// bits, and stops after the first group holding padding (one `=` drops a
/// byte, two drop two, more is an error).
pub fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let count = input
        .iter()
        .filter(|&&c| c == b'=' || value(c).is_some())
        .count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut group = [0u32; 4];
    let (mut n, mut pad, mut len) = (0, 0, 0);
    for &c in input {
        let v = match (c, value(c)) {
            (b'=', _) => {
                pad += 1;
                0
            }
            (_, Some(v)) => v,
            _ => continue,
        };
        group[n] = v;
        n += 1;
        if n < 4 {
            continue;
        }
        n = 0;
        let acc = (group[0] << 18) | (group[1] << 12) | (group[2] << 6) | group[3];
        out.get_mut(len..len + 3)?.copy_from_slice(&[
            (acc >> 16) as u8,
            (acc >> 8) as u8,
            acc as u8,
        ]);
        len += 3;
        if pad > 0 {
            if pad > 2 {
                return None;
            }
            len -= pad;
            break;
        }
    }
    (len > 0).then_some(len)
}

/// Appends the padded base64 encoding of `input` to `out`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let acc = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(acc >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
}
