//! Decimal parsing and formatting for incr/decr, matching memcached.
//!
//! memcached parses with `strtoull` and then checks the character after the
//! number: leading whitespace and a `+` sign are accepted, the number must
//! be followed by whitespace, a NUL or the end of the value, it may not
//! overflow, and a `-` anywhere in the value is refused only when the result
//! would look negative as a signed number. "5 abc" therefore counts as 5.

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The number at the start of a stored value, or `None` when memcached
/// would answer "non-numeric value".
pub(crate) fn parse_u64(v: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < v.len() && is_space(v[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
        neg = v[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    while i < v.len() && v[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add((v[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < v.len() && !(is_space(v[i]) || v[i] == 0) {
        return None;
    }
    let value = if neg { n.wrapping_neg() } else { n };
    // memcached looks for a `-` anywhere in the string when the result looks negative as a
    // signed number. It then reads on past the value into the slab (docs/compat.md); we stop
    // at the value's end, as its C string would if it were terminated.
    if (value as i64) < 0 {
        let text = v.split(|&b| b == 0).next().unwrap_or_default();
        if memchr::memchr(b'-', text).is_some() {
            return None;
        }
    }
    Some(value)
}

/// Writes `n` in decimal into `buf` and returns the digits.
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_strtoull() {
        assert_eq!(parse_u64(b"123"), Some(123));
        assert_eq!(parse_u64(b"5  "), Some(5));
        assert_eq!(parse_u64(b"5 abc"), Some(5));
        assert_eq!(parse_u64(b" 5"), Some(5));
        assert_eq!(parse_u64(b"+5"), Some(5));
        assert_eq!(parse_u64(b"5\t"), Some(5));
        assert_eq!(parse_u64(b"18446744073709551615 -"), None);
        assert_eq!(parse_u64(b"18446744073709551615\0-"), Some(u64::MAX));
        assert_eq!(parse_u64(b"5 -"), Some(5));
        assert_eq!(parse_u64(b"0000000000000000000000001"), Some(1));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"-5"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"   "), None);
        assert_eq!(parse_u64(b"5x"), None);
        assert_eq!(parse_u64(b"+"), None);
    }

    #[test]
    fn formats() {
        let mut b = [0; 20];
        assert_eq!(format_u64(0, &mut b), b"0");
        assert_eq!(format_u64(u64::MAX, &mut b), b"18446744073709551615");
        assert_eq!(format_u64(1015, &mut b), b"1015");
    }
}
