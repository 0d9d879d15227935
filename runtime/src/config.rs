//! Settings from the environment, read once per process: `GORO_MAXPROCS`,
//! `GORO_STACK_SIZE` and `GORO_NETPOLL=uring|epoll` (DESIGN §2). Builder methods override them.
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
    pub debug: Debug,
}

/// `GORO_DEBUG`: comma-separated `key=value` settings, in the form of Go's
/// `GODEBUG`. Unknown keys are ignored (as Go does), so a setting meant for
/// a newer goro does not stop an older one; a known key with a malformed
/// value is an error naming the variable and the key.
#[derive(Clone, Debug, Default)]
pub(crate) struct Debug {
    /// `asyncpreemptoff=1`: sysmon sends no preemption signal.
    pub async_preempt_off: bool,
    /// `preemptslice=10ms` (`us`, `ms` or `s`; bare numbers are ms): how
    /// long a goroutine may run before sysmon preempts it.
    pub preempt_slice: Option<std::time::Duration>,
}

/// Parses a `GORO_DEBUG` value.
pub(crate) fn parse_debug(text: &str) -> Result<Debug, String> {
    let mut debug = Debug::default();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let bad = || format!("GORO_DEBUG: malformed {key}={value:?}");
        match key {
            "asyncpreemptoff" => {
                debug.async_preempt_off = match value {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad()),
                }
            }
            "preemptslice" => {
                debug.preempt_slice = Some(parse_duration(value).ok_or_else(bad)?);
            }
            _ => {}
        }
    }
    Ok(debug)
}

/// `10ms`, `500us`, `1s`, or a bare number of milliseconds; positive.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (number, unit): (&str, fn(u64) -> Duration) = if let Some(n) = text.strip_suffix("us") {
        (n, Duration::from_micros)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        (text, Duration::from_millis)
    };
    let value = number.trim().parse::<u64>().ok().filter(|v| *v > 0)?;
    Some(unit(value))
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
                debug: match std::env::var("GORO_DEBUG") {
                    Ok(text) => parse_debug(&text)?,
                    Err(_) => Debug::default(),
                },
            })
        })
        .clone()
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))
}

fn positive(name: &str) -> Result<Option<usize>, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    parse_positive(name, &text).map(Some)
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
    use super::{parse_debug, parse_positive};
    use std::time::Duration;

    #[test]
    fn goro_debug_parses_preemption_settings_and_names_bad_values() {
        let debug = parse_debug("schedtrace=1000, asyncpreemptoff=1,preemptslice=500us").unwrap();
        assert!(debug.async_preempt_off);
        assert_eq!(debug.preempt_slice, Some(Duration::from_micros(500)));
        assert_eq!(
            parse_debug("preemptslice=2").unwrap().preempt_slice,
            Some(Duration::from_millis(2))
        );
        let error = parse_debug("preemptslice=fast").unwrap_err();
        assert!(error.contains("GORO_DEBUG") && error.contains("preemptslice"), "{error}");
        assert!(parse_debug("asyncpreemptoff=yes").is_err());
        assert!(!parse_debug("").unwrap().async_preempt_off);
    }

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
