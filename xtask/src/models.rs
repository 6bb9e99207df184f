//! `cargo xtask models`.

/// Arguments.
#[derive(clap::Args)]
pub struct Args {}

/// Entry point.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
