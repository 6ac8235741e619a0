//! Page cursors as the browser carries them, and the page a list answers with.
//!
//! A cursor is the key of a row at the edge of a page (an instance's name, an audit event's
//! position), base64url-encoded so that it reads as a token and survives any URL. It tells the
//! store where to start reading in the asking tenant's own list; it grants nothing, so a cursor
//! made from another tenant's row only marks a position here.

use super::ServiceError;
use crate::domain::Page;
use crate::server::store::{Seek, Slice};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The longest cursor accepted; real ones are far shorter.
const CURSOR_MAX: usize = 512;

/// The cursor of a row with this key.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key inside a cursor this server made.
fn decode(cursor: &str) -> Result<String, ServiceError> {
    if cursor.len() > CURSOR_MAX {
        return Err(ServiceError::BadPageLink);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ServiceError::BadPageLink)?;
    match String::from_utf8(bytes) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(ServiceError::BadPageLink),
    }
}

/// Where to read a list from, given its `?after=` and `?before=` values (blank when absent).
/// Both at once, or a cursor this server did not make, is a damaged link.
pub fn seek(after: &str, before: &str) -> Result<Seek<String>, ServiceError> {
    match (after.trim(), before.trim()) {
        ("", "") => Ok(Seek::First),
        (after, "") => Ok(Seek::After(decode(after)?)),
        ("", before) => Ok(Seek::Before(decode(before)?)),
        _ => Err(ServiceError::BadPageLink),
    }
}

/// The page of `slice` read from `at`, with the cursors of its neighbours: `key` gives a row's
/// key, `item` what the page shows of it.
pub fn page<R, T, K>(
    slice: Slice<R>,
    at: &Seek<K>,
    total: Option<u64>,
    key: impl Fn(&R) -> String,
    item: impl FnMut(R) -> T,
) -> Page<T> {
    let Slice { rows, more } = slice;
    let first = rows.first().map(|r| encode(&key(r)));
    let last = rows.last().map(|r| encode(&key(r)));
    let (next, previous) = match at {
        Seek::First => (last.filter(|_| more), None),
        Seek::After(_) => (last.filter(|_| more), first),
        Seek::Before(_) => (last, first.filter(|_| more)),
    };
    Page {
        items: rows.into_iter().map(item).collect(),
        next,
        previous,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_carries_its_key_there_and_back() {
        let cursor = encode("globex-web");
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(seek(&cursor, "").unwrap(), Seek::After("globex-web".into()));
        assert_eq!(
            seek("", &cursor).unwrap(),
            Seek::Before("globex-web".into())
        );
        assert_eq!(seek(" ", "").unwrap(), Seek::First);
    }

    #[test]
    fn damaged_cursors_are_refused() {
        let long = "A".repeat(CURSOR_MAX + 4);
        let not_utf8 = URL_SAFE_NO_PAD.encode([0xff, 0xfe]);
        for bad in ["not base64!", "%%%", &not_utf8, &long] {
            assert!(
                matches!(seek(bad, ""), Err(ServiceError::BadPageLink)),
                "{bad}"
            );
        }
        let ok = encode("a");
        assert!(matches!(seek(&ok, &ok), Err(ServiceError::BadPageLink)));
    }

    fn slice(rows: &[&'static str], more: bool) -> Slice<&'static str> {
        Slice {
            rows: rows.to_vec(),
            more,
        }
    }

    fn cursors(p: &Page<&str>) -> (Option<String>, Option<String>) {
        let key = |c: &Option<String>| c.as_ref().map(|c| decode(c).unwrap());
        (key(&p.next), key(&p.previous))
    }

    #[test]
    fn neighbours_are_offered_only_where_rows_lie() {
        let key = |r: &&str| r.to_string();
        let p = page(
            slice(&["a", "b"], true),
            &Seek::<&str>::First,
            None,
            key,
            |r| r,
        );
        assert_eq!(cursors(&p), (Some("b".into()), None));
        let p = page(
            slice(&["a", "b"], false),
            &Seek::<&str>::First,
            None,
            key,
            |r| r,
        );
        assert_eq!(cursors(&p), (None, None));
        let p = page(
            slice(&["c", "d"], false),
            &Seek::After("b"),
            None,
            key,
            |r| r,
        );
        assert_eq!(cursors(&p), (None, Some("c".into())));
        let p = page(
            slice(&["a", "b"], false),
            &Seek::Before("c"),
            None,
            key,
            |r| r,
        );
        assert_eq!(cursors(&p), (Some("b".into()), None));
        let p = page(
            slice(&["b", "c"], true),
            &Seek::Before("d"),
            None,
            key,
            |r| r,
        );
        assert_eq!(cursors(&p), (Some("c".into()), Some("b".into())));
        let p = page(slice(&[], false), &Seek::After("z"), None, key, |r| r);
        assert_eq!(cursors(&p), (None, None));
    }
}
