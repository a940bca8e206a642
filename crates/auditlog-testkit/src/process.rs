//! Running a program to completion in a test: its exit code and what it printed, with a
//! failure message that shows both streams.

use std::process::Command;

/// The outcome of one run of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Exit code (a death by signal panics instead).
    pub code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Runs `command` to completion, its output captured. Panics, naming `what`, when it
    /// cannot be started or is killed by a signal.
    #[track_caller]
    pub fn of(what: &str, command: &mut Command) -> Run {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Run {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("{what} was killed: {:?}", output.status)),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics, showing both streams, unless the run exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_code_and_streams() {
        let run = Run::of(
            "sh",
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        );
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        run.expect_code(3);
    }
}
