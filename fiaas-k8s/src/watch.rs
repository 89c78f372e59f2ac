//! How every watch of the daemon (Applications, Deployments, ResourceQuotas) behaves on a bad
//! day, and the client deadlines that go with it.
//!
//! A watch that the API server ends after [`WATCH_TIMEOUT_SECS`] is renewed from its last
//! resourceVersion (no relisting); kube's watcher gives up on a watch that stays silent a few
//! seconds longer than that, so a half-open or black-holed connection is noticed within about
//! twenty seconds instead of the default five minutes. After an error, the watch is retried quickly
//! ([`WatchBackoff`]), so deploys resume within seconds of the API server's return.

use std::time::Duration;

use kube::runtime::utils::Backoff;
use kube::runtime::watcher;

/// How long the API server keeps one watch request open.
pub const WATCH_TIMEOUT_SECS: u32 = 15;
/// Longest silence on a connection before a request fails: longer than a watch lasts, so only
/// a hung connection or server trips it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest time to open a connection to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Objects per page of a watch's (re)listing: kube's watcher holds a whole page of parsed objects
/// at once, and a thousand full Deployments are tens of MiB; a few more requests per listing
/// cost far less than that.
pub const LIST_PAGE_SIZE: u32 = 100;

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// The watcher configuration every watch of the daemon starts from.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default()
        .timeout(WATCH_TIMEOUT_SECS)
        .page_size(LIST_PAGE_SIZE)
}

/// Give a client configuration the deadlines the daemon relies on: connect and read timeouts,
/// and no retry layer inside the client (it may hold one call for many minutes on 429/503/504
/// answers); the daemon retries itself, each time with a bound.
pub fn with_deadlines(mut config: kube::Config) -> kube::Config {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.write_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    config.default_retry = false;
    config
}

/// Watch retry delays: 250 ms doubling to at most 2 s, back to 250 ms after a success.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST_DELAY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_resets() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<u128> = backoff.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_DELAY));
    }

    #[test]
    fn a_watch_ends_before_the_read_timeout_trips() {
        assert!(Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS)) < READ_TIMEOUT);
        let config = with_deadlines(kube::Config::new("https://127.0.0.1:1".parse().unwrap()));
        assert_eq!(config.read_timeout, Some(READ_TIMEOUT));
        assert!(!config.default_retry);
    }
}
