//! The `medic` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: ingest allocates per label and
/// sample, and glibc's malloc and free were about half of medic's CPU under
/// remote_write load (`bench/results/remote_write.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use medic_agent::{config, daemon, demo, telemetry};

#[derive(Parser)]
#[command(
    name = "medic",
    version,
    about = "Detect failures and recover them, safely and durably."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = "medic.yaml", env = "MEDIC_CONFIG")]
        config: PathBuf,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Validate the configuration and every runbook; exit non-zero on a mistake.
    Check {
        /// Configuration file.
        #[arg(long, short, default_value = "medic.yaml", env = "MEDIC_CONFIG")]
        config: PathBuf,
    },
    /// Run runbook tests (`*.test.yaml` beside each runbook): play incident
    /// timelines through the real runner and guard rails with fake
    /// executors; exit non-zero if a case fails or a file is malformed.
    Test {
        /// Test files, runbooks, or directories (searched recursively).
        #[arg(default_value = "runbooks")]
        paths: Vec<PathBuf>,
        /// Only cases whose name contains this.
        #[arg(long)]
        case: Option<String>,
        /// Print what happened in every case (as an `expect:` section).
        #[arg(long)]
        show: bool,
    },
    /// List incidents (open ones unless --all).
    Incidents {
        /// Include resolved incidents.
        #[arg(long)]
        all: bool,
        /// medic's API.
        #[arg(long, default_value = "http://127.0.0.1:9460", env = "MEDIC_API")]
        api: String,
        /// API token (needed when medic has `auth.tokens`).
        #[arg(long, env = "MEDIC_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Show one incident with its timeline.
    Incident {
        /// Incident id.
        id: i64,
        /// medic's API.
        #[arg(long, default_value = "http://127.0.0.1:9460", env = "MEDIC_API")]
        api: String,
        /// API token (needed when medic has `auth.tokens`).
        #[arg(long, env = "MEDIC_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Acknowledge an incident: "I have it".
    Ack {
        /// Incident id.
        id: i64,
        /// Who is acknowledging (default: $USER).
        #[arg(long)]
        who: Option<String>,
        /// A note for the timeline.
        #[arg(long, default_value = "")]
        comment: String,
        /// medic's API.
        #[arg(long, default_value = "http://127.0.0.1:9460", env = "MEDIC_API")]
        api: String,
        /// API token (needed when medic has `auth.tokens`).
        #[arg(long, env = "MEDIC_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Write the JSON Schemas of medic.yaml and runbook files.
    Schema {
        /// Output directory.
        #[arg(long, default_value = "runbooks/schema")]
        out: PathBuf,
    },
    /// Manage the store: `medic store migrate` moves state to etcd.
    Store {
        #[command(subcommand)]
        command: medic_agent::stores::migrate::StoreCommand,
    },
    /// Run the bundled demo service (a small web service you can break).
    DemoService {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Synthetic requests per second.
        #[arg(long, default_value_t = 20)]
        rps: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Check { config } => check(&config),
        Cmd::Schema { out } => schema(&out),
        Cmd::Test { paths, case, show } => runbook_tests(&paths, case, show),
        Cmd::Store { command } => medic_agent::stores::migrate::main(command),
        Cmd::Run { config, log_json } => {
            telemetry::init_logging(log_json);
            block_on(async move {
                match daemon::run(&config).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("medic: {e:#}");
                        ExitCode::from(2)
                    }
                }
            })
        }
        Cmd::DemoService { listen, rps } => {
            telemetry::init_logging(false);
            block_on(async move {
                match demo::run(demo::DemoOptions { listen, rps }).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("demo-service: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        Cmd::Incidents { all, api, token } => block_on(incidents(Api::new(api, token), all)),
        Cmd::Incident { id, api, token } => block_on(incident(Api::new(api, token), id)),
        Cmd::Ack {
            id,
            who,
            comment,
            api,
            token,
        } => {
            let who = who
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into());
            block_on(ack(Api::new(api, token), id, who, comment))
        }
    }
}

fn block_on<F: std::future::Future<Output = ExitCode>>(f: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("medic: cannot start runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(l) => {
            println!(
                "{}: ok ({} services, {} sources, {} detectors, {} runbooks)",
                path.display(),
                l.config.services.len(),
                l.config.sources.len(),
                l.config.detectors.len(),
                l.runbooks.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn runbook_tests(paths: &[PathBuf], filter: Option<String>, show: bool) -> ExitCode {
    use medic_agent::runbooks::testing;
    let opts = testing::Options { filter, show };
    let summary = testing::run(paths, &opts, &mut std::io::stdout());
    if summary.malformed > 0 {
        ExitCode::from(2)
    } else if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn schema(out: &Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    for (name, s) in config::schemas() {
        let p = out.join(name);
        let text = serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("{}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", p.display());
    }
    ExitCode::SUCCESS
}

/// medic's API as the CLI reaches it.
struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    fn new(base: String, token: Option<String>) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.trim().is_empty()),
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t.trim()),
            None => r,
        }
    }
}

async fn get_json(api: &Api, path: &str) -> Result<serde_json::Value, String> {
    let url = format!("{}{path}", api.base);
    let r = api
        .request(reqwest::Method::GET, path)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(v["error"].as_str().unwrap_or("request failed").to_string());
    }
    Ok(v)
}

fn ago(ms: i64) -> String {
    let now = medic_agent::series::now_millis();
    let s = ((now - ms).max(0) / 1000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
}

async fn incidents(api: Api, all: bool) -> ExitCode {
    let path = format!(
        "/api/v1/incidents?state={}",
        if all { "all" } else { "open" }
    );
    match get_json(&api, &path).await {
        Ok(v) => {
            let list = v["incidents"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no {}incidents", if all { "" } else { "open " });
                return ExitCode::SUCCESS;
            }
            println!(
                "{:>5}  {:<12}  {:<8}  {:<10}  {:<10}  SUMMARY",
                "ID", "STATE", "SEVERITY", "AGE", "HELD BY"
            );
            for i in list {
                println!(
                    "{:>5}  {:<12}  {:<8}  {:<10}  {:<10}  {}",
                    i["id"],
                    i["state"].as_str().unwrap_or(""),
                    i["severity"].as_str().unwrap_or(""),
                    ago(i["opened_at"].as_i64().unwrap_or(0)),
                    i["acked_by"].as_str().unwrap_or("-"),
                    i["summary"].as_str().unwrap_or("")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("medic: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn incident(api: Api, id: i64) -> ExitCode {
    match get_json(&api, &format!("/api/v1/incidents/{id}")).await {
        Ok(v) => {
            let i = &v["incident"];
            println!(
                "incident {} [{}] {}",
                i["id"],
                i["state"].as_str().unwrap_or(""),
                i["summary"].as_str().unwrap_or("")
            );
            for e in v["timeline"].as_array().cloned().unwrap_or_default() {
                let at = e["at"].as_i64().unwrap_or(0);
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64);
                println!(
                    "  {}  {:<10}  {:<24}  {}",
                    humantime::format_rfc3339_millis(t),
                    e["kind"].as_str().unwrap_or(""),
                    e["actor"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("medic: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn ack(api: Api, id: i64, who: String, comment: String) -> ExitCode {
    let path = format!("/api/v1/incidents/{id}/ack");
    let url = format!("{}{path}", api.base);
    let r = api
        .request(reqwest::Method::POST, &path)
        .json(&serde_json::json!({"who": who, "comment": comment}))
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => {
            // With a token, medic records the token's owner.
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            let by = v["incident"]["acked_by"].as_str().unwrap_or(&who);
            println!("incident {id} acknowledged by {by}");
            ExitCode::SUCCESS
        }
        Ok(r) => {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            eprintln!("medic: {}", v["error"].as_str().unwrap_or("refused"));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("medic: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
