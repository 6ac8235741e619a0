//! One page of a long list, and the links to its neighbours.
//!
//! Lists are read by key (a cursor), never by offset: a page costs the same wherever it lies,
//! and a row written meanwhile neither repeats nor hides one on the next page. The cursors are
//! opaque strings the server made; the browser only carries them in `?after=` (the next page)
//! and `?before=` (the previous one), beside the list's filters, so the links work without
//! JavaScript.

use super::percent_encode;
use serde::{Deserialize, Serialize};

/// One page of a list, in the list's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page (`?after=`), when there is one.
    pub next: Option<String>,
    /// The cursor of the previous page (`?before=`), when there is one.
    pub previous: Option<String>,
    /// How many rows match the filters in all, when the list counts them.
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// "12 instances" when everything is on this page, else "Showing 50 of 5,000 instances".
    pub fn summary(&self, one: &str, many: &str) -> Option<String> {
        let total = self.total?;
        let noun = |n: u64| if n == 1 { one } else { many };
        let shown = self.items.len() as u64;
        Some(if shown == total {
            format!("{} {}", thousands(total), noun(total))
        } else {
            format!("Showing {} of {} {}", shown, thousands(total), noun(total))
        })
    }
}

/// `5000` as `5,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The link to a page of the list at `path`: its non-blank `filters`, then `key=cursor` (the
/// first page when `cursor` is blank).
pub fn page_href(path: &str, filters: &[(&str, String)], key: &str, cursor: &str) -> String {
    let query: Vec<String> = filters
        .iter()
        .chain([(key, cursor.to_owned())].iter())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(shown: usize, total: Option<u64>) -> Page<u8> {
        Page {
            items: vec![0; shown],
            next: None,
            previous: None,
            total,
        }
    }

    #[test]
    fn summary_says_how_many_are_shown_when_not_all_are() {
        assert_eq!(
            page(5, Some(5)).summary("instance", "instances"),
            Some("5 instances".into())
        );
        assert_eq!(
            page(1, Some(1)).summary("instance", "instances"),
            Some("1 instance".into())
        );
        assert_eq!(
            page(50, Some(5000)).summary("instance", "instances"),
            Some("Showing 50 of 5,000 instances".into())
        );
        assert_eq!(page(50, None).summary("entry", "entries"), None);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn page_links_keep_the_filters_and_drop_blank_ones() {
        let filters = [
            ("environment", "production".to_owned()),
            ("status", String::new()),
            ("q", "web api".to_owned()),
        ];
        assert_eq!(
            page_href("/instances", &filters, "after", "Z2xvYmV4LXdlYg"),
            "/instances?environment=production&q=web%20api&after=Z2xvYmV4LXdlYg"
        );
        assert_eq!(
            page_href("/audit", &[], "before", "MTI"),
            "/audit?before=MTI"
        );
        assert_eq!(
            page_href("/instances", &filters, "after", ""),
            "/instances?environment=production&q=web%20api"
        );
        assert_eq!(page_href("/audit", &[], "after", ""), "/audit");
    }
}
