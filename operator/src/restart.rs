//! Starting this process again in place, after it lost the lead: the same binary, arguments and
//! environment replace the running image (execve), so nothing the old image ran (controllers,
//! meter, webhook connections, tasks of any kind) outlives it, and the new one starts as a
//! follower. The process id stays, and with it the identity in the Lease when none is given
//! (`HOSTNAME-pid`; a Pod's name otherwise): the new image renews the Lease at once if no other
//! replica has taken it, instead of waiting out its duration. Unlike an exit, this needs no
//! supervisor and costs no restart back-off when an apiserver outage outlasts the renew deadline.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The program to run again: the running image's file (through /proc, so a binary replaced or
/// removed on disk since the start is still the one run), else the path it was started by.
fn program() -> PathBuf {
    let own = PathBuf::from("/proc/self/exe");
    if own.exists() {
        own
    } else {
        std::env::current_exe()
            .unwrap_or_else(|_| PathBuf::from(std::env::args_os().next().unwrap_or_default()))
    }
}

/// The command that starts this process again: `program` with this process's argv[0] and
/// arguments (the environment is inherited).
fn command(program: PathBuf, mut args: impl Iterator<Item = OsString>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args);
    cmd
}

/// Replaces this process with a fresh start of itself; exits with status 1 if that is refused.
pub fn in_place() -> ! {
    let error = command(program(), std::env::args_os()).exec();
    tracing::error!(error = %error, "cannot start again in place; exiting");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_keeps_argv0_and_every_argument() {
        let args = ["commons", "run", "--leader-elect", "--listen", "127.0.0.1:1"].map(OsString::from);
        let cmd = command(PathBuf::from("/proc/self/exe"), args.clone().into_iter());
        assert_eq!(cmd.get_program(), "/proc/self/exe");
        let passed: Vec<_> = cmd.get_args().collect();
        assert_eq!(passed, args[1..].iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    }

    #[test]
    fn the_program_is_the_running_image() {
        assert_eq!(program(), PathBuf::from("/proc/self/exe"));
    }
}
