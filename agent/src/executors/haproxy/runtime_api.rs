//! A client of HAProxy's runtime API (the stats socket): one command per
//! connection, over a unix socket or TCP, and parsers for the answers medic
//! reads (`show stat`, `show servers state`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest answer read (a `show stat` of a large config is a few hundred KiB).
const ANSWER_LIMIT: u64 = 4 * 1024 * 1024;

/// Send one command to the runtime API at `addr` (a socket path containing
/// `/`, or `host:port`) and return the answer. HAProxy closes the connection
/// after answering a single command.
pub async fn command(addr: &str, cmd: &str, timeout: Duration) -> Result<String, String> {
    let io = async {
        let line = format!("{cmd}\n");
        let mut answer = Vec::new();
        if addr.contains('/') {
            let mut s = tokio::net::UnixStream::connect(addr).await?;
            s.write_all(line.as_bytes()).await?;
            s.shutdown().await?;
            s.take(ANSWER_LIMIT).read_to_end(&mut answer).await?;
        } else {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(line.as_bytes()).await?;
            s.shutdown().await?;
            s.take(ANSWER_LIMIT).read_to_end(&mut answer).await?;
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(format!("HAProxy runtime API {addr}: {e}")),
        Err(_) => Err(format!(
            "HAProxy runtime API {addr}: no answer within {timeout:?}"
        )),
    }
}

/// A `set …` command answers nothing when it worked, and a message when not.
pub fn expect_empty(cmd: &str, answer: &str) -> Result<(), String> {
    let a = answer.trim();
    if a.is_empty() {
        Ok(())
    } else {
        Err(format!("HAProxy refused {cmd:?}: {a}"))
    }
}

/// One server's row of `show stat`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerStat {
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, `no check`, …
    pub status: String,
    /// Current effective weight.
    pub weight: u32,
    /// Sessions since start: grows while the server gets traffic.
    pub sessions_total: u64,
}

/// Parse `show stat` (CSV with a `# pxname,svname,…` header) into the rows of
/// `backend`'s servers.
pub fn parse_stat(csv: &str, backend: &str) -> Result<BTreeMap<String, ServerStat>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| format!("unexpected answer to show stat: {:?}", first_line(csv)))?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("show stat has no column {name}"))
    };
    let (px, sv, stot, status, weight) = (
        col("pxname")?,
        col("svname")?,
        col("stot")?,
        col("status")?,
        col("weight")?,
    );
    let mut out = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < cols.len() || f[px] != backend || f[sv] == "BACKEND" || f[sv] == "FRONTEND" {
            continue;
        }
        out.insert(
            f[sv].to_string(),
            ServerStat {
                status: f[status].to_string(),
                weight: f[weight].parse().unwrap_or(0),
                sessions_total: f[stot].parse().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

/// The user-set weights of `backend`'s servers from `show servers state <backend>`
/// (format version 1: `be_id be_name srv_id srv_name srv_addr srv_op_state
/// srv_admin_state srv_uweight …`).
pub fn parse_weights(text: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("").trim();
    if version != "1" {
        return Err(format!(
            "unexpected answer to show servers state: {:?}",
            first_line(text)
        ));
    }
    let mut out = BTreeMap::new();
    for l in lines.filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 7 {
            out.insert(f[3].to_string(), f[7].parse().unwrap_or(0));
        }
    }
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from HAProxy 2.6.12 (columns shortened to the first 20 and
    // the rows kept whole for those).
    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,\n\
fe,FRONTEND,,,0,2,2000,12,1320,1584,0,0,0,,,,,OPEN,,,\n\
be,primary,0,0,0,1,,8,880,1056,,0,,0,0,0,0,MAINT,100,1,\n\
be,secondary,0,0,0,1,,4,440,528,,0,,0,0,0,0,no check,100,1,\n\
be,BACKEND,0,0,0,2,200,12,1320,1584,0,0,,0,0,0,0,UP,100,2,\n";

    #[test]
    fn show_stat_rows_of_one_backend() {
        let s = parse_stat(STAT, "be").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s["primary"],
            ServerStat {
                status: "MAINT".into(),
                weight: 100,
                sessions_total: 8
            }
        );
        assert_eq!(s["secondary"].status, "no check");
        assert!(parse_stat(STAT, "other").unwrap().is_empty());
        assert!(parse_stat("Unknown command\n", "be").is_err());
    }

    #[test]
    fn show_servers_state_weights() {
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n\
3 be 1 primary 127.0.0.1 2 0 100 100 12 6 3 4 6 0 0 0 - 18081 - 0 0 - - 0\n\
3 be 2 secondary 127.0.0.1 2 0 0 0 12 6 3 4 6 0 0 0 - 18082 - 0 0 - - 0\n";
        let w = parse_weights(text).unwrap();
        assert_eq!(w["primary"], 100);
        assert_eq!(w["secondary"], 0);
        assert!(parse_weights("No such backend.\n").is_err());
    }

    #[test]
    fn set_commands_answer_nothing_when_they_work() {
        assert!(expect_empty("set server be/x state maint", "\n").is_ok());
        let e = expect_empty("set server be/x state maint", "No such server.\n").unwrap_err();
        assert!(e.contains("No such server."), "{e}");
    }
}
