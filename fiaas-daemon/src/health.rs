//! Liveness of the daemon's long-running parts, for `/healthz`: each part beats while it makes
//! progress; a part that has not beaten within its allowance, or that has stopped, is unhealthy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Part {
    last_beat: Instant,
    allowance: Duration,
    stopped: Option<String>,
}

/// The health of every registered part.
#[derive(Clone, Debug, Default)]
pub struct Health {
    parts: Arc<Mutex<BTreeMap<&'static str, Part>>>,
}

/// A part's handle to report that it is alive.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    health: Health,
    name: &'static str,
}

impl Health {
    /// Register a part that must beat at least every `allowance`.
    pub fn register(&self, name: &'static str, allowance: Duration) -> Heartbeat {
        if let Ok(mut parts) = self.parts.lock() {
            parts.insert(
                name,
                Part {
                    last_beat: Instant::now(),
                    allowance,
                    stopped: None,
                },
            );
        }
        crate::metrics::healthy(name, true);
        Heartbeat {
            health: self.clone(),
            name,
        }
    }

    /// `Ok` when every part is alive, else why not, part by part.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let Ok(parts) = self.parts.lock() else {
            return Err(vec!["health registry poisoned".to_owned()]);
        };
        let now = Instant::now();
        let problems: Vec<String> = parts
            .iter()
            .filter_map(|(name, part)| {
                if let Some(reason) = &part.stopped {
                    Some(format!("{name} stopped: {reason}"))
                } else {
                    let silent = now.duration_since(part.last_beat);
                    (silent > part.allowance)
                        .then(|| format!("{name} silent for {}s", silent.as_secs()))
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl Heartbeat {
    /// The part is making progress.
    pub fn beat(&self) {
        if let Ok(mut parts) = self.health.parts.lock()
            && let Some(part) = parts.get_mut(self.name)
        {
            part.last_beat = Instant::now();
            part.stopped = None;
        }
        crate::metrics::healthy(self.name, true);
    }

    /// The part has ended or is failing and will not recover by itself.
    pub fn stop(&self, reason: impl Into<String>) {
        if let Ok(mut parts) = self.health.parts.lock()
            && let Some(part) = parts.get_mut(self.name)
        {
            part.stopped = Some(reason.into());
        }
        crate::metrics::healthy(self.name, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_or_stopped_parts_are_unhealthy() {
        let health = Health::default();
        let watcher = health.register("watcher", Duration::from_millis(20));
        let deployer = health.register("deployer", Duration::from_secs(60));
        assert!(health.check().is_ok());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(health.check().unwrap_err().len(), 1);
        watcher.beat();
        assert!(health.check().is_ok());
        deployer.stop("panicked");
        assert_eq!(
            health.check().unwrap_err(),
            vec!["deployer stopped: panicked".to_owned()]
        );
    }
}
