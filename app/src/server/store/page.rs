//! Reading a long list one page at a time, by key (keyset pagination).
//!
//! A page is read from a row's key in the list's order, with `LIMIT` one more than the page
//! size: the extra row only tells whether more lie beyond. The cost of a page is that of an
//! index range scan, the same on the first page and on the hundredth, and a row added or removed
//! meanwhile neither repeats nor hides another.

/// Where a page starts, in the list's own order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek<K> {
    /// At the start of the list.
    First,
    /// Just after the row with this key (the next page).
    After(K),
    /// Just before the row with this key (the previous page).
    Before(K),
}

impl<K> Seek<K> {
    /// The key to compare with, if any.
    pub fn key(&self) -> Option<&K> {
        match self {
            Seek::First => None,
            Seek::After(k) | Seek::Before(k) => Some(k),
        }
    }

    /// Whether the page is read against the list's order (and turned round after).
    pub fn backward(&self) -> bool {
        matches!(self, Seek::Before(_))
    }
}

/// The rows of one page, in the list's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice<T> {
    pub rows: Vec<T>,
    /// Whether more rows lie beyond this page in the direction it was read.
    pub more: bool,
}

impl<T> Slice<T> {
    /// The page from up to `limit + 1` rows read in the direction of travel.
    pub(super) fn from_read(mut rows: Vec<T>, limit: usize, backward: bool) -> Slice<T> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        if backward {
            rows.reverse();
        }
        Slice { rows, more }
    }
}

/// What `LIMIT` to read a page of `limit` rows with.
pub(super) fn read_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_says_more_and_is_dropped() {
        let s = Slice::from_read(vec![1, 2, 3], 2, false);
        assert_eq!(s.rows, [1, 2]);
        assert!(s.more);
        let s = Slice::from_read(vec![1, 2], 2, false);
        assert!(!s.more);
    }

    #[test]
    fn a_page_read_backward_is_turned_round() {
        // Read before key 10 of an ascending list: 9, 8, 7 (one extra).
        let s = Slice::from_read(vec![9, 8, 7], 2, true);
        assert_eq!(s.rows, [8, 9]);
        assert!(s.more);
    }
}
