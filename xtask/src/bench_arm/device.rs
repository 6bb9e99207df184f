//! `--device` values and the commands that copy `lite-cli` and the models to a device and run
//! `lite-cli bench` there. Commands are built as plain argument vectors so tests can check them.

use crate::cross::SYSROOT;
use anyhow::{Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A command line: the program, then its arguments.
pub type Argv = Vec<String>;

/// The executable's name on the device.
const EXE: &str = "lite-cli";
/// Options of every `ssh` and `scp`: never prompt, give up connecting after 10 s.
const SSH_OPTS: [&str; 4] = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"];

/// Where the benchmark runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// An adb device, by serial (`adb devices` lists them).
    Adb(String),
    /// An AArch64 Linux machine reached with `ssh`/`scp`, as `[USER@]HOST`.
    Ssh(String),
    /// This machine, running the cross-built binary under qemu user-mode emulation: a smoke run.
    Qemu,
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "qemu" {
            return Ok(Device::Qemu);
        }
        let usage = || format!("'{s}': expected adb:SERIAL, ssh:USER@HOST or qemu");
        // Split at the first colon only: adb serials of network devices are HOST:PORT.
        let (kind, rest) = s.split_once(':').ok_or_else(usage)?;
        if rest.is_empty()
            || rest.starts_with('-')
            || !rest.chars().all(|c| c.is_ascii_alphanumeric() || "._-@:%[]".contains(c))
        {
            return Err(format!("{}: '{rest}' is not a valid {kind} address", usage()));
        }
        match kind {
            "adb" => Ok(Device::Adb(rest.to_string())),
            "ssh" if rest.matches('@').count() <= 1 && !rest.starts_with('@') && !rest.ends_with('@') => {
                Ok(Device::Ssh(rest.to_string()))
            }
            "ssh" => Err(format!("{}: '{rest}' is not USER@HOST", usage())),
            _ => Err(usage()),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Adb(serial) => write!(f, "adb:{serial}"),
            Device::Ssh(dest) => write!(f, "ssh:{dest}"),
            Device::Qemu => write!(f, "qemu"),
        }
    }
}

impl Device {
    /// The directory the files go to when `--remote-dir` is not given (unused under qemu).
    pub fn default_dir(&self) -> &'static str {
        match self {
            Device::Adb(_) => "/data/local/tmp/lithe",
            Device::Ssh(_) | Device::Qemu => "/tmp/lithe-bench",
        }
    }
}

/// A model file to benchmark: where it is on the host and its file name on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFile {
    /// The `.nb` (or `.onnx`) file on the host.
    pub path: PathBuf,
    /// Its name in the device directory (only characters that need no shell quoting).
    pub name: String,
}

/// How to reach one device: the commands that install `lite-cli` and the models, and run it.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The device.
    pub device: Device,
    /// The directory on the device (unused under qemu).
    pub dir: String,
    /// The cross-built `lite-cli` on the host.
    pub binary: PathBuf,
    /// The qemu program (under qemu).
    pub qemu: String,
}

/// Whether `s` can go into a remote shell command unquoted.
pub fn shell_safe(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/+~@=,".contains(c))
}

impl Plan {
    /// The plan for `device`, files in `dir` (the device's default when `None`).
    pub fn new(device: Device, dir: Option<&str>, binary: PathBuf, qemu: &str) -> Result<Plan> {
        let dir = dir.unwrap_or(device.default_dir()).trim_end_matches('/').to_string();
        if !shell_safe(&dir) {
            bail!("--remote-dir '{dir}': use letters, digits and . _ - / + ~ @ = , only");
        }
        Ok(Plan { device, dir, binary, qemu: qemu.to_string() })
    }

    /// The command that prints the device's machine (`uname -m`); `None` under qemu.
    pub fn probe(&self) -> Option<Argv> {
        self.shell("uname -m")
    }

    /// The commands that create the directory and copy the binary and `models` into it (none
    /// under qemu, which runs the host files in place).
    pub fn install(&self, models: &[ModelFile]) -> Vec<Argv> {
        let dir = &self.dir;
        let mut cmds = Vec::new();
        cmds.extend(self.shell(&format!("mkdir -p {dir}")));
        cmds.extend(self.copy(&self.binary, EXE));
        for m in models {
            cmds.extend(self.copy(&m.path, &m.name));
        }
        cmds.extend(self.shell(&format!("chmod 755 {dir}/{EXE}")));
        cmds
    }

    /// The command that runs `lite-cli bench` on `model`.
    pub fn bench(&self, model: &ModelFile, threads: usize, warmup: usize, repeats: usize) -> Argv {
        let opts = format!("--threads {threads} --warmup {warmup} --repeats {repeats}");
        match &self.device {
            Device::Qemu => {
                let mut argv = vec![self.qemu.clone(), "-L".into(), SYSROOT.into(), path(&self.binary)];
                argv.extend(["bench".to_string(), path(&model.path)]);
                argv.extend(opts.split(' ').map(String::from));
                argv
            }
            _ => {
                let line = format!("cd {} && ./{EXE} bench {} {opts}", self.dir, model.name);
                self.shell(&line).unwrap_or_default()
            }
        }
    }

    /// `line` run by the device's shell; `None` under qemu.
    fn shell(&self, line: &str) -> Option<Argv> {
        let mut argv: Argv = match &self.device {
            Device::Adb(serial) => ["adb", "-s", serial, "shell"].map(String::from).to_vec(),
            Device::Ssh(dest) => {
                let mut a = vec!["ssh".to_string()];
                a.extend(SSH_OPTS.map(String::from));
                a.push(dest.clone());
                a
            }
            Device::Qemu => return None,
        };
        argv.push(line.to_string());
        Some(argv)
    }

    /// The command that copies the host file `from` to `name` in the device directory.
    fn copy(&self, from: &Path, name: &str) -> Option<Argv> {
        let to = format!("{}/{name}", self.dir);
        match &self.device {
            Device::Adb(serial) => Some(vec!["adb".into(), "-s".into(), serial.clone(), "push".into(), path(from), to]),
            Device::Ssh(dest) => {
                let mut a = vec!["scp".to_string(), "-q".to_string()];
                a.extend(SSH_OPTS.map(String::from));
                a.extend([path(from), format!("{dest}:{to}")]);
                Some(a)
            }
            Device::Qemu => None,
        }
    }
}

/// A host path as a command argument.
fn path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Argv {
        s.split(' ').map(String::from).collect()
    }

    fn model() -> ModelFile {
        ModelFile { path: PathBuf::from("/w/target/bench-arm/resnet18.nb"), name: "resnet18.nb".into() }
    }

    #[test]
    fn parses_devices() {
        assert_eq!("qemu".parse(), Ok(Device::Qemu));
        assert_eq!("adb:R58M123".parse(), Ok(Device::Adb("R58M123".into())));
        assert_eq!("adb:192.168.1.7:5555".parse(), Ok(Device::Adb("192.168.1.7:5555".into())));
        assert_eq!("adb:emulator-5554".parse(), Ok(Device::Adb("emulator-5554".into())));
        assert_eq!("ssh:pi@raspberrypi.local".parse(), Ok(Device::Ssh("pi@raspberrypi.local".into())));
        assert_eq!("ssh:orangepi".parse(), Ok(Device::Ssh("orangepi".into())));
        assert_eq!("ssh:me@10.0.0.2".parse::<Device>().map(|d| d.to_string()), Ok("ssh:me@10.0.0.2".into()));
        for bad in [
            "",
            "qemu:x",
            "adb",
            "adb:",
            "ssh:",
            "ssh:@host",
            "ssh:user@",
            "ssh:a@b@c",
            "ssh:-oProxyCommand=x",
            "ssh:user@host;rm",
            "ssh:user host",
            "tcp:1.2.3.4",
            "usb:1",
        ] {
            assert!(bad.parse::<Device>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn adb_commands() {
        let p = Plan::new(Device::Adb("R58M".into()), None, "/w/target/aarch64/lite-cli".into(), "").unwrap();
        // The shell command line is one argument.
        let shell = |line: &str| {
            let mut a = argv("adb -s R58M shell");
            a.push(line.into());
            a
        };
        assert_eq!(p.probe(), Some(shell("uname -m")));
        assert_eq!(
            p.install(&[model()]),
            vec![
                shell("mkdir -p /data/local/tmp/lithe"),
                argv("adb -s R58M push /w/target/aarch64/lite-cli /data/local/tmp/lithe/lite-cli"),
                argv("adb -s R58M push /w/target/bench-arm/resnet18.nb /data/local/tmp/lithe/resnet18.nb"),
                shell("chmod 755 /data/local/tmp/lithe/lite-cli"),
            ]
        );
        assert_eq!(
            p.bench(&model(), 4, 10, 30),
            shell("cd /data/local/tmp/lithe && ./lite-cli bench resnet18.nb --threads 4 --warmup 10 --repeats 30")
        );
    }

    #[test]
    fn ssh_commands() {
        let p = Plan::new(Device::Ssh("pi@rpi5".into()), None, "/w/lite-cli".into(), "").unwrap();
        let ssh = |line: &str| {
            let mut a = argv("ssh -o BatchMode=yes -o ConnectTimeout=10 pi@rpi5");
            a.push(line.into());
            a
        };
        assert_eq!(p.probe(), Some(ssh("uname -m")));
        assert_eq!(
            p.install(&[model()]),
            vec![
                ssh("mkdir -p /tmp/lithe-bench"),
                argv("scp -q -o BatchMode=yes -o ConnectTimeout=10 /w/lite-cli pi@rpi5:/tmp/lithe-bench/lite-cli"),
                argv(
                    "scp -q -o BatchMode=yes -o ConnectTimeout=10 /w/target/bench-arm/resnet18.nb pi@rpi5:/tmp/lithe-bench/resnet18.nb"
                ),
                ssh("chmod 755 /tmp/lithe-bench/lite-cli"),
            ]
        );
        assert_eq!(
            p.bench(&model(), 2, 1, 5),
            ssh("cd /tmp/lithe-bench && ./lite-cli bench resnet18.nb --threads 2 --warmup 1 --repeats 5")
        );
        let custom = Plan::new(Device::Ssh("rpi5".into()), Some("~/bench/"), "/w/lite-cli".into(), "").unwrap();
        assert_eq!(custom.dir, "~/bench");
        assert!(Plan::new(Device::Ssh("rpi5".into()), Some("/tmp/a b"), "x".into(), "").is_err());
        assert!(Plan::new(Device::Ssh("rpi5".into()), Some("/tmp/$(reboot)"), "x".into(), "").is_err());
    }

    #[test]
    fn qemu_runs_host_files_in_place() {
        let p = Plan::new(Device::Qemu, None, "/w/lite-cli".into(), "qemu-aarch64-static").unwrap();
        assert_eq!(p.probe(), None);
        assert!(p.install(&[model()]).is_empty());
        assert_eq!(
            p.bench(&model(), 1, 1, 2),
            argv(
                "qemu-aarch64-static -L /usr/aarch64-linux-gnu /w/lite-cli bench /w/target/bench-arm/resnet18.nb --threads 1 --warmup 1 --repeats 2"
            )
        );
    }
}
