//! The hints cache: guesses a warm container keeps from earlier reads (never a fact).

#[allow(unused_imports)]
use super::*;

/// How long a warm container trusts a bucket's default-key hint before it stops speculating.
pub(super) const HINT_TTL: Duration = Duration::from_secs(300);
/// Buckets remembered at most; the map starts over beyond it.
pub(super) const HINT_MAX: usize = 1024;

/// Which key a bucket's default encryption named when this container last read it, and the
/// account that key id resolves in. Only a guess that lets the key be read beside the bucket's
/// settings (one dependent round fewer); what the bucket says now always decides.
#[derive(Debug, Default)]
pub struct Hints {
    default_keys: Mutex<HashMap<String, (Instant, String, String)>>,
}

impl Hints {
    pub(super) fn default_key(&self, bucket: &str) -> Option<(String, String)> {
        let map = self.default_keys.lock().ok()?;
        map.get(bucket)
            .filter(|(at, _, _)| at.elapsed() < HINT_TTL)
            .map(|(_, key, home)| (key.clone(), home.clone()))
    }

    pub(super) fn remember(&self, bucket: &str, key: Option<(&str, &str)>) {
        let Ok(mut map) = self.default_keys.lock() else {
            return;
        };
        match key {
            Some((key, home)) => {
                if map.len() >= HINT_MAX && !map.contains_key(bucket) {
                    map.clear();
                }
                map.insert(
                    bucket.to_string(),
                    (Instant::now(), key.to_string(), home.to_string()),
                );
            }
            None => {
                map.remove(bucket);
            }
        }
    }
}
