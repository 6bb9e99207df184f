//! `lite-cli`: inspect, optimize and run models (ONNX or `.nb`) with Lithe.
//!
//! Errors are printed as one line, `error: <message chain>`, with exit code 1; usage errors
//! exit with 2 (clap's default).

mod args;
mod bench;
mod diff;
mod info;
mod model;
mod opt;
mod qat;
mod quant;
mod report;
mod run;
mod save;
mod stats;
mod train;

use clap::{ArgAction, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Inspect, optimize and run models (ONNX or Lithe .nb) with Lithe.
#[derive(Parser, Debug)]
#[command(name = "lite-cli", version, about)]
struct Cli {
    /// Log more on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a model's inputs, outputs, operators, parameters and FLOPs.
    Info(info::InfoArgs),
    /// Run a model on .npy inputs.
    Run(run::RunArgs),
    /// Optimize a model and write it as one `.nb` file; list passes and supported operators.
    Opt(opt::OptArgs),
    /// List the ONNX operator types the importer supports.
    Ops,
    /// Time a model: median/min/max latency, and with --profile a per-node breakdown.
    Bench(bench::BenchArgs),
    /// Quantize a model: weight-only int8/int16, or static int8 calibrated on data.
    Quant(quant::QuantArgs),
    /// Compare two models on the same data: every value they share by name, worst first, and
    /// their outputs.
    Diff(diff::DiffArgs),
    /// Train a classifier: progress per epoch, validation, a checkpoint per epoch, the model
    /// as .nb or ONNX.
    Train(train::TrainArgs),
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Info(a) => info::run(&a, &mut out),
        Command::Run(a) => run::run(&a, &mut out),
        Command::Opt(a) => opt::run(&a, &mut out),
        Command::Ops => ops(&mut out),
        Command::Bench(a) => bench::run(&a, &mut out),
        Command::Quant(a) => quant::run(&a, &mut out),
        Command::Diff(a) => diff::run(&a, &mut out),
        Command::Train(a) => train::run(&a, &mut out),
    };
    let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report::error_line(&e));
            ExitCode::from(1)
        }
    }
}

/// `lite-cli ops`.
fn ops(out: &mut dyn Write) -> anyhow::Result<()> {
    let mut names = lithe_onnx::supported_ops();
    names.sort_unstable();
    for n in names {
        writeln!(out, "{n}")?;
    }
    Ok(())
}

/// A closed stdout (`lite-cli ops | head -1`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // A second initialization cannot happen here; ignore the error rather than panic.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

/// Last resort: a panic prints one line and exits with 101 (no backtrace).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("internal error: {}{at}", report::one_line(&msg));
        std::process::exit(101);
    }));
}
