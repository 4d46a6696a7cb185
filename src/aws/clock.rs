//! The system clock: wall time for records, tokio's timer for waits (paused in tests).

use crate::ports::Clock;
use async_trait::async_trait;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_on_tokio_time_and_reads_the_wall_clock() {
        let start = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_secs(3600)).await;
        // Paused time advances by exactly the sleep, without waiting an hour.
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
        // 2024-01-01T00:00:00Z; the wall clock is not paused.
        assert!(SystemClock.now() > 1_704_067_200);
    }
}
