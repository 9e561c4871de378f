//! Wall-clock time for the parts of medic that act over minutes and hours —
//! the runbook runner, its guard rails, the engine's ticks — read through one
//! trait, so `medic test` can play an hour-long incident timeline in
//! milliseconds, the same way every time.
//!
//! Sleeps and timeouts use tokio's timers everywhere. Under `medic test` the
//! runtime's time is paused: it jumps to the next timer whenever every task
//! waits. [`VirtualClock`] derives wall-clock milliseconds from that same
//! paused time, so timers and timestamps agree. In the daemon, [`SystemClock`]
//! reads the system clock ([`crate::series::now_millis`]) and tokio's time is
//! real time.

use std::sync::Arc;

use crate::series::Millis;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> Millis;
}

/// A clock shared by the runner, the engine and the guards.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        crate::series::now_millis()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Wall-clock time that follows tokio's (possibly paused) time: `start_wall`
/// at the moment it was made, plus however far tokio's time has moved since.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    start_wall: Millis,
    start: tokio::time::Instant,
}

impl VirtualClock {
    /// A clock reading `start_wall` now. Call inside a tokio runtime.
    pub fn starting_at(start_wall: Millis) -> Self {
        VirtualClock {
            start_wall,
            start: tokio::time::Instant::now(),
        }
    }

    /// How far tokio's time has moved since the clock was made.
    pub fn elapsed(&self) -> std::time::Duration {
        tokio::time::Instant::now().saturating_duration_since(self.start)
    }
}

impl Clock for VirtualClock {
    fn now_millis(&self) -> Millis {
        self.start_wall
            .saturating_add(i64::try_from(self.elapsed().as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_time_moves_with_paused_tokio_time() {
        let c = VirtualClock::starting_at(1_000);
        assert_eq!(c.now_millis(), 1_000);
        // An hour passes at once: nothing else is waiting.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(c.now_millis(), 1_000 + 3_600_000);
    }
}
