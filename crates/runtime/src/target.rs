//! Targets (CPU families a `.nb` may be deployed to) and the operators each can run.
//!
//! Every operator has a portable reference kernel that runs on any target; architecture
//! kernels (NEON on `arm`, AVX2/AVX-512 on `x86`) are listed per operator as they land.

use lithe_ir::Op;
use std::fmt;
use std::str::FromStr;

/// A deployment target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// 64-bit ARM (aarch64) phones and boards.
    Arm,
    /// x86-64 laptops and servers.
    X86,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 2] = [Target::Arm, Target::X86];

    /// The lower-case name used on the command line (`arm`, `x86`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Arm => "arm",
            Target::X86 => "x86",
        }
    }

    /// The target this binary runs on, if it is one of ours.
    pub fn host() -> Option<Target> {
        if cfg!(target_arch = "aarch64") {
            Some(Target::Arm)
        } else if cfg!(target_arch = "x86_64") {
            Some(Target::X86)
        } else {
            None
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A target name that is not known.
#[derive(Debug, thiserror::Error)]
#[error("unknown target '{0}' (targets: arm, x86)")]
pub struct UnknownTarget(pub String);

impl FromStr for Target {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Target, UnknownTarget> {
        match s.trim().to_ascii_lowercase().as_str() {
            "arm" | "arm64" | "aarch64" | "armv8" => Ok(Target::Arm),
            "x86" | "x86_64" | "x86-64" | "amd64" => Ok(Target::X86),
            _ => Err(UnknownTarget(s.to_string())),
        }
    }
}

/// Which kernels a target has for one operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSupport {
    /// The operator name ([`Op::name`]).
    pub op: &'static str,
    /// Kernel families, best first (`reference` is the portable one).
    pub kernels: Vec<&'static str>,
}

/// The operators `target` can run, sorted by name, with their kernels.
pub fn supported_ops(target: Target) -> Vec<OpSupport> {
    let _ = target; // every operator has the portable kernel on every target today
    Op::all_names().into_iter().map(|op| OpSupport { op, kernels: vec!["reference"] }).collect()
}

/// True when `target` has a kernel for the operator named `op`.
pub fn supports(target: Target, op: &str) -> bool {
    supported_ops(target).iter().any(|s| s.op == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_every_op_is_covered() {
        assert_eq!("ARM".parse::<Target>().unwrap(), Target::Arm);
        assert_eq!("x86_64".parse::<Target>().unwrap(), Target::X86);
        assert!("mips".parse::<Target>().unwrap_err().to_string().contains("arm, x86"));
        for t in Target::ALL {
            assert!(supports(t, "Conv") && supports(t, "FullyConnected"));
            assert!(!supports(t, "NoSuchOp"));
            assert_eq!(supported_ops(t).len(), Op::all_names().len());
        }
    }
}
