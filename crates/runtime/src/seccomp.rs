//! Seccomp from the spec, compiled with libseccomp (the `libseccomp` crate).
//!
//! Why libseccomp rather than a pure-Rust BPF compiler such as `seccompiler`:
//! the OCI profile format *is* libseccomp's model (SCMP_ACT_* per rule,
//! SCMP_CMP_* argument operators, SCMP_ARCH_* lists, per-rule errno), and it
//! resolves syscall names per architecture — podman's default profile names
//! ~400 syscalls, some absent on a given arch, which must be skipped, not
//! rejected. seccompiler takes syscall numbers and one match action per
//! filter, so we would re-implement name tables and multi-action merging.
//! runc, crun and youki all use libseccomp for the same reasons.

use crate::error::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Seccomp(format!("{what}: {e}"))
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Seccomp("SCMP_ACT_NOTIFY is not supported".into()))
        }
    })
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        _ => return None,
    })
}

fn op(o: LinuxSeccompOperator, value: u64, two: Option<u64>) -> (ScmpCompareOp, u64) {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: value is the mask, valueTwo the value compared after masking.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0))
        }
    }
}

/// Compiles the spec's profile (not loaded yet).
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("new filter", e))?;
    ctx.set_ctl_nnp(false).map_err(|e| err("nnp control", e))?;
    for a in s.architectures().iter().flatten() {
        if let Some(a) = arch(*a) {
            ctx.add_arch(a)
                .map_err(|e| err(&format!("arch {a:?}"), e))?;
        }
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).map_err(|e| err("log flag", e))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true)
                    .map_err(|e| err("spec_allow flag", e))?;
            }
            _ => {}
        }
    }
    for rule in s.syscalls().iter().flatten() {
        add_rule(&mut ctx, rule, default)?;
    }
    Ok(ctx)
}

fn add_rule(ctx: &mut ScmpFilterContext, rule: &LinuxSyscall, default: ScmpAction) -> Result<()> {
    let act = action(rule.action(), rule.errno_ret())?;
    if act == default {
        return Ok(()); // libseccomp refuses rules that repeat the default
    }
    let conds: Vec<ScmpArgCompare> = rule
        .args()
        .iter()
        .flatten()
        .map(|a| {
            let (o, datum) = op(a.op(), a.value(), a.value_two());
            ScmpArgCompare::new(a.index() as u32, o, datum)
        })
        .collect();
    let mut indices: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
    indices.sort_unstable();
    indices.dedup();
    let distinct = indices.len() == conds.len();
    for name in rule.names() {
        // Names unknown on this kernel/arch are skipped, as runc does.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let r = if conds.is_empty() {
            ctx.add_rule(act, sc)
        } else if distinct {
            ctx.add_rule_conditional(act, sc, &conds)
        } else {
            // Several conditions on one argument: libseccomp cannot AND them,
            // so each becomes its own rule (OR), as runc does.
            conds
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                .map(|_| &mut *ctx)
        };
        r.map_err(|e| err(&format!("rule for {name}"), e))?;
    }
    Ok(())
}

/// Loads a compiled filter into the calling thread.
pub fn load(ctx: &ScmpFilterContext) -> Result<()> {
    ctx.load().map_err(|e| err("load", e))
}
