//! Alert delivery: which receiver URLs are acceptable, and when a failed
//! delivery is tried again (exponential backoff with jitter).

/// Why a receiver URL is not acceptable, or None: an absolute `http` or
/// `https` URL with a host, no whitespace, no user info (secrets belong in
/// the receiver's headers) and no fragment.
pub fn url_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() {
        return Some("must not be empty");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain whitespace or control characters");
    }
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return Some("must start with http:// or https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some("must not contain a user or password (put credentials in headers)");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => return Some("has an unclosed [ around its host"),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().ok().filter(|&p| p > 0).is_none() {
            return Some("has an invalid port");
        }
    }
    if host.is_empty() {
        return Some("must name a host");
    }
    if url.contains('#') {
        return Some("must not contain a fragment");
    }
    None
}

/// The delay in milliseconds before the next try after `attempts` failed
/// ones (1 or more): `base_ms` doubled per attempt, capped at `cap_ms`, then
/// scaled by `jitter` in [0, 1] into [half, all] of it so that receivers
/// coming back are not hit by every pending delivery at once.
pub fn retry_delay_ms(attempts: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> u64 {
    let exp = attempts.saturating_sub(1).min(62);
    let full = base_ms.saturating_mul(1u64 << exp).min(cap_ms);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let half = full / 2;
    half + ((full - half) as f64 * j) as u64
}

/// Most alerts sent to an Alertmanager in one request (Prometheus's notifier
/// sends at most 64).
pub const ALERTMANAGER_BATCH: usize = 64;

/// Whether, after an attempt with this answer (`status`: the HTTP status, or
/// None when the request got no answer), the receiver's other due
/// deliveries wait for its retry instead of being sent now: it is down,
/// hanging, overloaded or failing as a whole (no answer, 408, 429, 5xx).
/// Other non-2xx answers concern one body, so the rest is still sent.
pub fn receiver_unavailable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

/// Joins JSON arrays (each the text of a JSON array, such as the alerts of
/// one notification for an Alertmanager) into one array, in order. Text
/// that is not an array is taken as one element.
pub fn join_json_arrays<'a>(arrays: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for a in arrays {
        let t = a.trim();
        let inner = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(str::trim)
            .unwrap_or(t);
        if inner.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(inner);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls() {
        for ok in [
            "http://localhost:9093",
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "http://127.0.0.1:8080/hook?x=1",
            "http://[::1]:9093/api",
            "HTTPS://Example.com",
        ] {
            assert_eq!(url_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "must not be empty"),
            ("ftp://x", "must start with http:// or https://"),
            ("localhost:9093", "must start with http:// or https://"),
            ("http://", "must name a host"),
            ("http:///path", "must name a host"),
            (
                "http://user:pw@host/",
                "must not contain a user or password (put credentials in headers)",
            ),
            ("http://host:99999/", "has an invalid port"),
            ("http://host:abc/", "has an invalid port"),
            (
                "http://ho st/",
                "must not contain whitespace or control characters",
            ),
            ("http://host/#frag", "must not contain a fragment"),
        ] {
            assert_eq!(url_problem(bad), Some(why), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(retry_delay_ms(1, 1000, 60_000, 1.0), 1000);
        assert_eq!(retry_delay_ms(2, 1000, 60_000, 1.0), 2000);
        assert_eq!(retry_delay_ms(3, 1000, 60_000, 1.0), 4000);
        assert_eq!(retry_delay_ms(10, 1000, 60_000, 1.0), 60_000);
        assert_eq!(retry_delay_ms(3, 1000, 60_000, 0.0), 2000);
        assert_eq!(retry_delay_ms(u32::MAX, 1000, 60_000, 0.5), 45_000);
    }

    #[test]
    fn unavailable_receivers_wait() {
        assert!(receiver_unavailable(None));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(receiver_unavailable(Some(s)), "{s}");
        }
        for s in [200, 204, 301, 400, 401, 404, 413, 422] {
            assert!(!receiver_unavailable(Some(s)), "{s}");
        }
    }

    #[test]
    fn arrays_are_joined() {
        assert_eq!(join_json_arrays([]), "[]");
        assert_eq!(join_json_arrays(["[{\"a\": 1}]"]), "[{\"a\": 1}]");
        assert_eq!(
            join_json_arrays(["[{\"a\": 1}]", " [ ] ", "[{\"b\": [2]}, 3]"]),
            "[{\"a\": 1},{\"b\": [2]}, 3]"
        );
        assert_eq!(join_json_arrays(["{\"c\": 1}"]), "[{\"c\": 1}]");
    }

    proptest! {
        #[test]
        fn joined_arrays_parse_and_keep_every_element(xs in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..5), 0..8)) {
            let texts: Vec<String> = xs.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
            let joined = join_json_arrays(texts.iter().map(String::as_str));
            let parsed: Vec<i32> = serde_json::from_str(&joined).unwrap();
            let flat: Vec<i32> = xs.concat();
            prop_assert_eq!(parsed, flat);
        }

        #[test]
        fn delay_is_within_half_and_all_of_the_capped_doubling(attempts in 1u32..200, base in 1u64..100_000,
                                                             cap in 1u64..10_000_000, jitter in 0.0f64..=1.0) {
            let full = base.saturating_mul(1u64 << (attempts - 1).min(62)).min(cap);
            let d = retry_delay_ms(attempts, base, cap, jitter);
            prop_assert!(d >= full / 2 && d <= full);
            // more attempts never wait less (same jitter)
            prop_assert!(retry_delay_ms(attempts + 1, base, cap, jitter) >= d);
        }

        #[test]
        fn any_string_is_judged_without_panicking(s in ".{0,64}") {
            let _ = url_problem(&s);
        }
    }
}
