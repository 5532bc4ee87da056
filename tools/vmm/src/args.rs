// SPDX-License-Identifier: GPL-2.0
//! Command-line parsing: pure, so every refusal is tested on the host.

use std::path::PathBuf;

use crate::apf::AsyncPf;
use crate::error::Error;
use crate::error::Result;
use crate::latency::Latency;
use crate::layout;
use crate::marker::Marker;

/// The usage text of `--help`.
pub const USAGE: &str = "\
usage: apf-vmm --kernel IMAGE [options]

Boots an arm64 Linux Image on KVM with a PL011 console, a vGICv3, the arch
timer and PSCI. Exits when the guest powers off, or on SIGINT/SIGTERM.

  --kernel IMAGE            arm64 Linux Image (required)
  --initrd FILE             initramfs
  --cmdline STRING          kernel command line (default: console=ttyAMA0)
  --cpus N                  vCPUs, 1 to 4 (default 1)
  --mem SIZE                RAM, e.g. 256M or 1G (default 256M)

Guest RAM served lazily (post-copy / snapshot restore stand-in):
  --mem-image FILE          serve RAM page by page through userfaultfd from
                            FILE (zeros beyond its end); the kernel, initramfs
                            and device tree are written first, present
  --page-latency SPEC       delay of each page: DUR, fixed:DUR,
                            uniform:MIN,MAX or exp:MEAN; DUR like 0, 200us,
                            1ms, 0.5s (default 0)
  --seed N                  seed of the latency distribution (default 1)
  --remote-after MARKER     snapshot restore: each time the guest's console
                            prints a line containing MARKER, stop the vCPU
                            that printed it right there, pause the others,
                            write the present pages to FILE, drop all of RAM
                            (each page is served again from FILE) and resume
  --remote-latency LIST     the delay of each page after the n-th restore:
                            the n-th SPEC of a comma-separated list, the last
                            one for later restores (e.g. 0.2ms,1ms,10ms);
                            --page-latency is then the delay before the first
                            (default: --page-latency throughout)
  --served-at MARKER        each time the guest's console prints a line
                            containing MARKER, print how many pages were
                            served so far (a probe for benchmarks)

Asynchronous page faults (needs kvm_apf.ko in the host):
  --async-pf                enable KVM_CAP_ARM_ASYNC_PF before the first run
  --apf-not-present-intid N not-present PPI, 16-31 (default 20)
  --apf-ready-intid N       page-ready PPI or SPI (default 21)
  --apf-slots N             tokens per vCPU: 0 (64) or a power of two <= 1024
  --apf-allow-el1           let the guest ask for EL1 fault notifications

  --help                    this text
";

/// arm64's COMMAND_LINE_SIZE, the terminating NUL included.
const CMDLINE_MAX: usize = 2048;

/// The options that take a value.
const VALUED: &[&str] = &[
    "--kernel",
    "--initrd",
    "--cmdline",
    "--cpus",
    "--mem",
    "--mem-image",
    "--page-latency",
    "--seed",
    "--remote-after",
    "--remote-latency",
    "--served-at",
    "--apf-not-present-intid",
    "--apf-ready-intid",
    "--apf-slots",
];

/// How guest RAM is backed.
#[derive(Debug, Clone, PartialEq)]
pub enum Memory {
    /// Anonymous memory, faulted in by the kernel as usual.
    Present,
    /// Served through userfaultfd from a memory image file.
    Lazy {
        /// The memory image (offset 0 is the first byte of RAM).
        image: PathBuf,
        /// Per-page latency.
        latency: Latency,
        /// Seed of the latency generator.
        seed: u64,
    },
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Kernel Image.
    pub kernel: PathBuf,
    /// Initramfs, if any.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub cmdline: String,
    /// Number of vCPUs.
    pub cpus: u32,
    /// RAM size in bytes.
    pub mem_size: u64,
    /// How RAM is backed.
    pub memory: Memory,
    /// Async page faults, if asked for.
    pub async_pf: Option<AsyncPf>,
    /// The console marker after which guest RAM is made remote again.
    pub remote_after: Option<String>,
    /// Per-page latency after the n-th time RAM was made remote (the last
    /// entry for later ones); empty: the latency of `memory` throughout.
    pub remote_latency: Vec<Latency>,
    /// The console marker at which the count of pages served is printed.
    pub served_at: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Boot a VM.
    Run(Box<Config>),
    /// Print the usage text.
    Help,
}

/// Parses a size: a number with an optional `K`, `M` or `G` suffix (binary
/// units); a bare number is bytes.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let (num, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 256M, 1G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_u32(opt: &str, v: &str) -> Result<u32> {
    v.parse()
        .map_err(|_| Error::new(format!("{opt}: '{v}' is not a number")))
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut kernel = None;
    let mut initrd = None;
    let mut cmdline = None;
    let mut cpus = 1;
    let mut mem_size = 256 << 20;
    let mut mem_image = None;
    let mut latency = None;
    let mut seed = None;
    let mut remote_after = None;
    let mut remote_latency = Vec::new();
    let mut served_at = None;
    let mut async_pf = false;
    let mut apf = AsyncPf::default();
    let mut apf_opts: Vec<&'static str> = Vec::new();

    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // "--opt=value" and "--opt value" both work.
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let takes_value = match opt {
            "--help" | "-h" | "--async-pf" | "--apf-allow-el1" => false,
            _ if VALUED.contains(&opt) => true,
            _ if opt.starts_with('-') => {
                return Err(Error::new(format!("unknown option {opt} (see --help)")))
            }
            _ => return Err(Error::new(format!("unexpected argument '{opt}' (see --help)"))),
        };
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| Error::new(format!("{opt} needs a value")))?,
            }
        } else {
            if inline.is_some() {
                return Err(Error::new(format!("{opt} takes no value")));
            }
            String::new()
        };
        match opt {
            "--help" | "-h" => return Ok(Command::Help),
            "--kernel" => kernel = Some(PathBuf::from(value)),
            "--initrd" => initrd = Some(PathBuf::from(value)),
            "--cmdline" => {
                if value.len() >= CMDLINE_MAX {
                    return Err(Error::new(format!(
                        "--cmdline: {} bytes, the arm64 kernel takes at most {}",
                        value.len(),
                        CMDLINE_MAX - 1
                    )));
                }
                cmdline = Some(value)
            }
            "--cpus" => {
                cpus = parse_u32(opt, &value)?;
                if !(1..=layout::MAX_CPUS).contains(&cpus) {
                    return Err(Error::new(format!(
                        "--cpus {cpus}: must be 1 to {}",
                        layout::MAX_CPUS
                    )));
                }
            }
            "--mem" => {
                mem_size = parse_size(&value).map_err(|e| Error::new(format!("--mem: {e}")))?;
                if !(layout::RAM_MIN..=layout::RAM_MAX).contains(&mem_size) {
                    return Err(Error::new(format!(
                        "--mem {value}: must be {} MiB to {} GiB",
                        layout::RAM_MIN >> 20,
                        layout::RAM_MAX >> 30
                    )));
                }
                if mem_size % (2 << 20) != 0 {
                    return Err(Error::new(format!("--mem {value}: must be a multiple of 2M")));
                }
            }
            "--mem-image" => mem_image = Some(PathBuf::from(value)),
            "--page-latency" => {
                latency = Some(
                    Latency::parse(&value).map_err(|e| Error::new(format!("--page-latency: {e}")))?,
                )
            }
            "--seed" => {
                seed = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| Error::new(format!("--seed: '{value}' is not a number")))?,
                )
            }
            "--remote-after" => {
                Marker::new(&value).map_err(|e| Error::new(format!("--remote-after: {e}")))?;
                remote_after = Some(value);
            }
            "--remote-latency" => {
                remote_latency = Latency::parse_list(&value)
                    .map_err(|e| Error::new(format!("--remote-latency: {e}")))?;
            }
            "--served-at" => {
                Marker::new(&value).map_err(|e| Error::new(format!("--served-at: {e}")))?;
                served_at = Some(value);
            }
            "--async-pf" => async_pf = true,
            "--apf-not-present-intid" => {
                apf.not_present_intid = parse_u32(opt, &value)?;
                apf_opts.push("--apf-not-present-intid");
            }
            "--apf-ready-intid" => {
                apf.ready_intid = parse_u32(opt, &value)?;
                apf_opts.push("--apf-ready-intid");
            }
            "--apf-slots" => {
                apf.slots = parse_u32(opt, &value)?;
                apf_opts.push("--apf-slots");
            }
            "--apf-allow-el1" => {
                apf.allow_el1 = true;
                apf_opts.push("--apf-allow-el1");
            }
            _ => return Err(Error::new(format!("unknown option {opt} (see --help)"))),
        }
    }

    let kernel = kernel.ok_or_else(|| Error::new("--kernel IMAGE is required (see --help)"))?;
    if !remote_latency.is_empty() && remote_after.is_none() {
        return Err(Error::new("--remote-latency needs --remote-after (the restores it gives latencies to)"));
    }
    if let Some(first) = apf_opts.first() {
        if !async_pf {
            return Err(Error::new(format!("{first} needs --async-pf")));
        }
    }
    let memory = match mem_image {
        Some(image) => Memory::Lazy {
            image,
            latency: latency.unwrap_or(Latency::Fixed(0)),
            seed: seed.unwrap_or(1),
        },
        None => {
            if latency.is_some() {
                return Err(Error::new("--page-latency needs --mem-image"));
            }
            if seed.is_some() {
                return Err(Error::new("--seed needs --mem-image"));
            }
            if remote_after.is_some() {
                return Err(Error::new("--remote-after needs --mem-image (the image it writes RAM to)"));
            }
            if served_at.is_some() {
                return Err(Error::new("--served-at needs --mem-image (the pages it counts)"));
            }
            Memory::Present
        }
    };
    let async_pf = if async_pf {
        apf.validate(cpus)?;
        Some(apf)
    } else {
        None
    };
    Ok(Command::Run(Box::new(Config {
        kernel,
        initrd,
        cmdline: cmdline.unwrap_or_else(|| "console=ttyAMA0".to_owned()),
        cpus,
        mem_size,
        memory,
        async_pf,
        remote_after,
        remote_latency,
        served_at,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config> {
        match parse(args.iter().copied())? {
            Command::Run(c) => Ok(*c),
            Command::Help => Err(Error::new("help")),
        }
    }

    fn err(args: &[&str]) -> String {
        match run(args) {
            Ok(c) => panic!("accepted {args:?}: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&["--kernel", "Image"]).unwrap();
        assert_eq!(c.kernel, PathBuf::from("Image"));
        assert_eq!(c.initrd, None);
        assert_eq!(c.cmdline, "console=ttyAMA0");
        assert_eq!(c.cpus, 1);
        assert_eq!(c.mem_size, 256 << 20);
        assert_eq!(c.memory, Memory::Present);
        assert_eq!(c.async_pf, None);
        assert_eq!(c.remote_after, None);
        assert!(c.remote_latency.is_empty());
        assert_eq!(c.served_at, None);
    }

    #[test]
    fn remote_latency_per_restore() {
        let c = run(&[
            "--kernel", "I", "--mem-image", "m", "--page-latency", "0", "--remote-after", "M",
            "--remote-latency", "0.2ms,1ms,10ms",
        ])
        .unwrap();
        assert_eq!(
            c.remote_latency,
            vec![Latency::Fixed(200_000), Latency::Fixed(1_000_000), Latency::Fixed(10_000_000)]
        );
        assert_eq!(
            c.memory,
            Memory::Lazy { image: PathBuf::from("m"), latency: Latency::Fixed(0), seed: 1 }
        );
        let c = run(&["--kernel", "I", "--mem-image", "m", "--remote-after", "M", "--remote-latency=exp:1ms"])
            .unwrap();
        assert_eq!(c.remote_latency, vec![Latency::Exponential(1_000_000)]);
        let c = run(&["--kernel", "I", "--mem-image", "m", "--served-at", "END"]).unwrap();
        assert_eq!(c.served_at.as_deref(), Some("END"));
    }

    #[test]
    fn remote_after() {
        let c = run(&["--kernel", "I", "--mem-image", "m", "--remote-after", "APF-WORK: filled"]).unwrap();
        assert_eq!(c.remote_after.as_deref(), Some("APF-WORK: filled"));
        let c = run(&["--kernel", "I", "--mem-image", "m", "--remote-after=x"]).unwrap();
        assert_eq!(c.remote_after.as_deref(), Some("x"));
    }

    #[test]
    fn everything_given() {
        let c = run(&[
            "--kernel=Image", "--initrd", "i.cpio", "--cmdline", "console=ttyAMA0 quiet",
            "--cpus", "4", "--mem", "1G", "--mem-image", "/tmp/m", "--page-latency",
            "exp:1ms", "--seed=9", "--async-pf", "--apf-not-present-intid", "18",
            "--apf-ready-intid", "19", "--apf-slots", "128", "--apf-allow-el1",
        ])
        .unwrap();
        assert_eq!(c.initrd, Some(PathBuf::from("i.cpio")));
        assert_eq!(c.cmdline, "console=ttyAMA0 quiet");
        assert_eq!(c.cpus, 4);
        assert_eq!(c.mem_size, 1 << 30);
        assert_eq!(
            c.memory,
            Memory::Lazy {
                image: PathBuf::from("/tmp/m"),
                latency: Latency::Exponential(1_000_000),
                seed: 9
            }
        );
        assert_eq!(
            c.async_pf,
            Some(AsyncPf { not_present_intid: 18, ready_intid: 19, slots: 128, allow_el1: true })
        );
    }

    #[test]
    fn lazy_defaults_to_no_latency() {
        let c = run(&["--kernel", "I", "--mem-image", "m"]).unwrap();
        assert_eq!(
            c.memory,
            Memory::Lazy { image: PathBuf::from("m"), latency: Latency::Fixed(0), seed: 1 }
        );
    }

    #[test]
    fn help() {
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["--kernel", "x", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn refusals_are_one_line_and_name_the_option() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "--kernel IMAGE is required"),
            (&["--kernel"], "--kernel needs a value"),
            (&["--kernel", "I", "--cpus", "0"], "--cpus 0"),
            (&["--kernel", "I", "--cpus", "5"], "--cpus 5"),
            (&["--kernel", "I", "--cpus", "two"], "not a number"),
            (&["--kernel", "I", "--mem", "1M"], "--mem 1M"),
            (&["--kernel", "I", "--mem", "lots"], "not a size"),
            (&["--kernel", "I", "--mem", "257M"], "multiple of 2M"),
            (&["--kernel", "I", "--mem", "99999999999G"], "too large"),
            (&["--kernel", "I", "--page-latency", "1ms"], "needs --mem-image"),
            (&["--kernel", "I", "--seed", "3"], "needs --mem-image"),
            (&["--kernel", "I", "--mem-image", "m", "--page-latency", "1"], "no unit"),
            (&["--kernel", "I", "--mem-image", "m", "--seed", "-1"], "--seed"),
            (&["--kernel", "I", "--remote-after", "x"], "--remote-after needs --mem-image"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after", ""], "marker is empty"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after", "a\nb"], "control character"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after"], "needs a value"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-latency", "1ms"], "needs --remote-after"),
            (&["--kernel", "I", "--remote-latency", "1ms"], "needs --remote-after"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after", "M", "--remote-latency", "1ms,,2ms"], "empty item"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after", "M", "--remote-latency", "1ms,5"], "--remote-latency"),
            (&["--kernel", "I", "--mem-image", "m", "--remote-after", "M", "--remote-latency"], "needs a value"),
            (&["--kernel", "I", "--served-at", "END"], "--served-at needs --mem-image"),
            (&["--kernel", "I", "--mem-image", "m", "--served-at", ""], "--served-at: the marker is empty"),
            (&["--kernel", "I", "--apf-slots", "8"], "--apf-slots needs --async-pf"),
            (&["--kernel", "I", "--apf-allow-el1"], "needs --async-pf"),
            (&["--kernel", "I", "--async-pf", "--apf-slots", "3"], "--apf-slots 3"),
            (&["--kernel", "I", "--async-pf", "--apf-ready-intid", "20"], "must differ"),
            (&["--kernel", "I", "--async-pf", "--apf-not-present-intid", "27"], "arch timer"),
            (&["--kernel", "I", "--async-pf=1"], "takes no value"),
            (&["--kernel", "I", "--bogus"], "unknown option --bogus"),
            (&["--kernel", "I", "stray"], "unexpected argument 'stray'"),
        ];
        let long = "x".repeat(2048);
        assert!(err(&["--kernel", "I", "--cmdline", &long]).contains("at most 2047"));
        for (args, want) in cases {
            let e = err(args);
            assert!(e.contains(want), "{args:?}: '{e}' lacks '{want}'");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("-1M").is_err());
    }
}
