// Pasted into the `text`, `meta` and `binary` checks with `include!`: the
// re-parse invariant they share. A request parsed from the front of a buffer
// comes out the same from exactly its own bytes, and with any of a few
// likely follow-ups appended. A macro rather than a function: parse results
// borrow from their input, and only at the call site do the three results
// share one lifetime.

/// `$parse(buf)` found a request of `consumed` bytes; re-parse its frame
/// alone and followed by each of `tails`, and require the same result.
macro_rules! check_reparse {
    ($parse:expr, $buf:expr, $consumed:expr, $tails:expr) => {{
        let buf: &[u8] = $buf;
        let whole = $parse(buf);
        let frame = &buf[..$consumed];
        assert_eq!($parse(frame), whole, "re-parse of exactly the frame");
        for tail in $tails {
            let longer = [frame, tail].concat();
            assert_eq!($parse(&longer), whole, "re-parse with {tail:?} appended");
        }
    }};
}
