//! What the `command` and `plugin` executors share about child processes:
//! each runs in its own process group that is killed when the step ends or is
//! cancelled (timeout), dies with medic (`PR_SET_PDEATHSIG`), and has its
//! output read with a size limit so a chatty child can neither block on a full
//! pipe nor fill medic's memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Kills the process group when dropped (timeout or cancellation) or when
/// [`GroupGuard::kill`] is called. Children the program left behind in its
/// group die with it.
pub struct GroupGuard(Option<i32>);

impl GroupGuard {
    /// Guard the group led by `pid` (`None`: nothing to guard).
    pub fn new(pid: Option<u32>) -> Self {
        GroupGuard(pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1))
    }

    /// SIGKILL the whole group now.
    pub fn kill(&self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command set up the way every executor child runs: no stdin unless asked,
/// stdout and stderr piped, its own process group, killed on drop, and killed
/// by the kernel if medic dies.
pub fn child_command(argv: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; called in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Text a child wrote, cut at a limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Captured {
    /// The first `limit` bytes, lossily decoded.
    pub text: String,
    /// More than `limit` bytes were written.
    pub truncated: bool,
}

/// Keep the first `limit` bytes of a stream and drain the rest, so the child
/// never blocks on a full pipe.
pub async fn read_limited<R: AsyncRead + Unpin>(r: &mut R, limit: u64) -> Captured {
    let (buf, truncated) = read_up_to(r, limit).await;
    if truncated {
        let _ = tokio::io::copy(r, &mut tokio::io::sink()).await;
    }
    Captured {
        text: String::from_utf8_lossy(&buf).into_owned(),
        truncated,
    }
}

/// Read at most `limit` bytes; true if the stream had more (one byte more is
/// read to know). Does not drain.
pub async fn read_up_to<R: AsyncRead + Unpin>(r: &mut R, limit: u64) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let _ = (&mut *r)
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .await;
    let truncated = buf.len() as u64 > limit;
    buf.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    (buf, truncated)
}
