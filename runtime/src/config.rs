//! Settings from the environment, read once per process: `GORO_MAXPROCS`,
//! `GORO_STACK_SIZE`, `GORO_NETPOLL=uring|epoll` (DESIGN §2) and
//! `GORO_DEBUG` (parsed in `debug_flags.rs`). Builder methods override them.
//!
//! A malformed value is an error from `RuntimeBuilder::build` naming the
//! variable, never silently ignored.

use std::io;
use std::sync::OnceLock;

/// Parsed environment: `None` where a variable is unset.
#[derive(Clone, Debug, Default)]
pub(crate) struct Environment {
    pub procs: Option<usize>,
    pub stack_size: Option<usize>,
    pub netpoll: Option<goro_netpoll::BackendKind>,
    pub debug: crate::debug_flags::DebugFlags,
}

/// The environment settings, parsed on first use.
pub(crate) fn environment() -> io::Result<Environment> {
    static PARSED: OnceLock<Result<Environment, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            Ok(Environment {
                procs: positive("GORO_MAXPROCS")?,
                stack_size: positive("GORO_STACK_SIZE")?,
                netpoll: goro_netpoll::BackendKind::from_env().map_err(|e| e.to_string())?,
                debug: crate::debug_flags::DebugFlags::from_env()?,
            })
        })
        .clone()
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))
}

fn positive(name: &str) -> Result<Option<usize>, String> {
    match std::env::var(name) {
        Ok(text) => parse_positive(name, &text).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(text)) => {
            Err(format!("{name} must be a positive integer, got {text:?}"))
        }
    }
}

/// Parses a positive integer setting, naming the variable in the error.
pub(crate) fn parse_positive(name: &str, text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(format!("{name} must be a positive integer, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_positive;

    #[test]
    fn parses_positive_integers_and_names_the_variable_otherwise() {
        assert_eq!(parse_positive("GORO_MAXPROCS", " 4 "), Ok(4));
        let error = parse_positive("GORO_MAXPROCS", "zero").unwrap_err();
        assert!(
            error.contains("GORO_MAXPROCS") && error.contains("zero"),
            "{error}"
        );
        assert!(parse_positive("GORO_STACK_SIZE", "0").is_err());
        assert!(parse_positive("GORO_STACK_SIZE", "-1").is_err());
    }
}
