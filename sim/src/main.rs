//! `nomad-sim`: serves a generated, Nomad-compatible event stream, or writes a capture of one.

use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nomad_sim::{Framing, Generator, Sim, SimConfig};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A simulated Nomad agent for demos, tests and benchmarks.
///
/// Without a subcommand it serves `GET /v1/event/stream` (and
/// `/v1/status/leader`, `/v1/namespaces`, `/v1/agent/members`) with a
/// realistic generated cluster history, like a real Nomad agent would: `{}`
/// greeting and heartbeats, Nomad's buffer and start-index rules, topic and
/// namespace filters, optional ACL token. The list endpoints (`/v1/jobs`,
/// `/v1/allocations`, `/v1/evaluations`, `/v1/deployments`, `/v1/nodes`,
/// `/v1/job/:id`) answer from the state that history built.
#[derive(Parser)]
#[command(name = "nomad-sim", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write an NDJSON capture, exactly as `curl -N …/v1/event/stream` would receive it, and exit.
    Capture(CaptureArgs),
}

/// Options of the default (serving) mode.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4646")]
    listen: SocketAddr,
    /// Seed of the generated history; the same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events published before the server starts, so a new subscriber gets a backlog.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preload: usize,
    /// Events published per second after the preload; 0 publishes nothing more.
    #[arg(long, default_value_t = 50.0, value_name = "EVENTS_PER_SEC")]
    rate: f64,
    /// Raft entries kept in the event buffer (Nomad's `event_buffer_size`); defaults to 100,
    /// or enough to hold the whole preload.
    #[arg(long, value_name = "ENTRIES")]
    buffer_size: Option<usize>,
    /// Interval between `{}` heartbeats.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// Require this ACL token (`X-Nomad-Token` or `Authorization: Bearer`); ACLs are off without it.
    #[arg(long, env = "NOMAD_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How stream bodies are framed: as Nomad <= 1.11.1 (chunked, chunked-gzip
    /// when the client asks) or >= 1.11.2 (close-delimited; http00 as 1.11.2's
    /// invalid status line).
    #[arg(long, value_enum, default_value = "chunked")]
    framing: Framing,
}

/// Options of `capture`.
#[derive(Args)]
struct CaptureArgs {
    /// Events to generate (the capture ends with the frame that reaches this many).
    #[arg(long, value_name = "N")]
    events: usize,
    /// Write only the frames after this raft index of the same seeded history
    /// (the ones a capture of it would continue with); `--events` then counts
    /// only the frames written.
    #[arg(long, value_name = "INDEX", default_value_t = 0)]
    after_index: u64,
    /// Seed of the generated history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the capture; `-` is standard output.
    #[arg(long, default_value = "-", value_name = "FILE")]
    output: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Some(Command::Capture(args)) => capture(&args),
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the error is the reader of our output going away, which is not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Writes the capture: `{}`, every frame, a `{}` heartbeat every 500 frames.
fn capture(args: &CaptureArgs) -> Result<()> {
    let out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create `{}`", args.output.display()))?;
        Box::new(file)
    };
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut generator = Generator::new(args.seed);
    let context = || format!("cannot write to `{}`", args.output.display());
    out.write_all(b"{}\n").with_context(context)?;
    let (mut events, mut frames) = (0, 0usize);
    while events < args.events {
        let frame = generator.next_frame();
        if frame.index <= args.after_index {
            continue;
        }
        events += frame.events.len();
        frames += 1;
        out.write_all(frame.to_line().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .with_context(context)?;
        if frames % 500 == 0 {
            out.write_all(b"{}\n").with_context(context)?;
        }
    }
    out.flush().with_context(context)?;
    tracing::info!(frames, events, "Capture written");
    Ok(())
}

/// Serves a live generated history until Ctrl-C.
fn serve(args: ServeArgs) -> Result<()> {
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        anyhow::bail!("`--rate` must be a finite number of events per second, 0 or more");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_server(args))
}

async fn run_server(args: ServeArgs) -> Result<()> {
    let mut generator = Generator::new(args.seed);
    let preload = generator.frames(args.preload);
    let config = SimConfig {
        buffer_size: args.buffer_size.unwrap_or(preload.len().max(100)),
        heartbeat: args.heartbeat,
        token: args.token.clone(),
        framing: args.framing,
    };
    let sim = Sim::new(config.clone());
    // A demo runs for hours: keep the buffer, not the whole history.
    sim.set_record_history(false);
    let preloaded_events: usize = preload.iter().map(|f| f.events.len()).sum();
    for frame in preload {
        sim.publish(frame);
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    tracing::info!(
        url = %format_args!("http://{addr}/v1/event/stream"),
        seed = args.seed,
        preloaded_events,
        rate = args.rate,
        buffer_size = config.buffer_size,
        acl = config.token.is_some(),
        framing = ?config.framing,
        "Serving simulated Nomad event stream"
    );

    let publisher = tokio::spawn(publish_forever(sim.clone(), generator, args.rate));
    let shutdown = async {
        stop_requested().await;
        tracing::info!("Shutting down");
    };
    let served = sim.serve(listener, shutdown).await;
    publisher.abort();
    let _ = publisher.await;
    served.context("server failed")
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_requested() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    ctrl_c.await;
}

/// Publishes generated frames at `rate` events per second, forever.
async fn publish_forever(sim: Sim, mut generator: Generator, rate: f64) {
    if rate <= 0.0 {
        return;
    }
    let mut due = Instant::now();
    loop {
        let frame = generator.next_frame();
        due += Duration::from_secs_f64(frame.events.len() as f64 / rate);
        tokio::time::sleep_until(due).await;
        sim.publish(frame);
    }
}
