//! `GORO_DEBUG`: Go's `GODEBUG`, for goro. A comma-separated list of
//! `key=value` settings, read once per process with the other `GORO_*`
//! variables (`config.rs`):
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `schedtrace` | milliseconds (`1000`), or a duration (`500ms`, `2s`) | print Go's `SCHED` line to stderr every period; `0` is off |
//! | `scheddetail` | `0` or `1` | with `schedtrace`, add a line per P, M and goroutine |
//! | `sigquit` | `dump` (default) or `exit` | after the SIGQUIT goroutine dump, carry on, or exit with status 2 as Go does |
//! | `asyncpreemptoff` | `0` or `1` | `1`: sysmon sends no preemption signal (`sched/preempt.rs`) |
//! | `preemptslice` | a duration (`10ms` default, `500us`) | how long a goroutine runs before sysmon preempts it |
//!
//! This file is the one parser: a new key is one arm in [`DebugFlags::set`],
//! using the value
//! parsers below. A malformed value is an error naming `GORO_DEBUG`, which
//! `RuntimeBuilder::build` returns; an unknown key is kept in
//! [`DebugFlags::unknown`] and warned about through `tracing`, as Go
//! tolerates unknown `GODEBUG` keys (a newer setting must not break an older
//! binary).

use std::time::Duration;

/// The variable's name, for error messages.
pub(crate) const VARIABLE: &str = "GORO_DEBUG";

/// Parsed `GORO_DEBUG` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DebugFlags {
    /// `schedtrace`: the period of the `SCHED` line, if on.
    pub schedtrace: Option<Duration>,
    /// `scheddetail=1`.
    pub scheddetail: bool,
    /// `sigquit=exit`.
    pub sigquit_exit: bool,
    /// `asyncpreemptoff=1`: sysmon sends no preemption signal.
    pub async_preempt_off: bool,
    /// `preemptslice=10ms`: how long a goroutine may run before sysmon
    /// preempts it (a tuning and testing knob; Go's is fixed at 10 ms).
    pub preempt_slice: Option<Duration>,
    /// Keys this version does not know, tolerated.
    pub unknown: Vec<String>,
}

impl DebugFlags {
    /// Parses the variable's text.
    pub(crate) fn parse(text: &str) -> Result<DebugFlags, String> {
        let mut flags = DebugFlags::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(format!(
                    "{VARIABLE} must be a comma-separated list of key=value, got {entry:?}"
                ));
            };
            flags.set(key.trim(), value.trim())?;
        }
        Ok(flags)
    }

    /// Reads and parses the variable; unset is the default.
    pub(crate) fn from_env() -> Result<DebugFlags, String> {
        match std::env::var(VARIABLE) {
            Ok(text) => DebugFlags::parse(&text),
            Err(std::env::VarError::NotPresent) => Ok(DebugFlags::default()),
            Err(error) => Err(format!("{VARIABLE}: {error}")),
        }
    }

    /// Applies one `key=value`. Add new keys here.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "schedtrace" => {
                let period = duration(key, value)?;
                self.schedtrace = (!period.is_zero()).then_some(period);
            }
            "scheddetail" => self.scheddetail = flag(key, value)?,
            "asyncpreemptoff" => self.async_preempt_off = flag(key, value)?,
            "preemptslice" => {
                let slice = duration(key, value)?;
                if slice.is_zero() {
                    return Err(invalid(key, value, "a positive duration"));
                }
                self.preempt_slice = Some(slice);
            }
            "sigquit" => {
                self.sigquit_exit = match value {
                    "exit" => true,
                    "dump" => false,
                    _ => return Err(invalid(key, value, "exit or dump")),
                }
            }
            _ => {
                tracing::warn!(target: "goro::config", key, "unknown {VARIABLE} setting ignored");
                self.unknown.push(key.to_string());
            }
        }
        Ok(())
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> String {
    format!("{VARIABLE}: {key} must be {expected}, got {value:?}")
}

/// `0` or `1`.
pub(crate) fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(invalid(key, value, "0 or 1")),
    }
}

/// A duration: a bare number is milliseconds (Go's `schedtrace`), or a
/// number with `us`, `ms` or `s`.
pub(crate) fn duration(key: &str, value: &str) -> Result<Duration, String> {
    let (digits, unit): (&str, fn(u64) -> Duration) = if let Some(n) = value.strip_suffix("us") {
        (n, Duration::from_micros)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        (value, Duration::from_millis)
    };
    /// Longer periods are surely typos, and would overflow deadlines.
    const MOST: Duration = Duration::from_secs(24 * 60 * 60);
    digits
        .parse::<u64>()
        .ok()
        .map(unit)
        .filter(|period| *period <= MOST)
        .ok_or_else(|| {
            invalid(
                key,
                value,
                "a number of milliseconds (or 10us, 5ms, 2s), at most a day",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys() {
        let flags = DebugFlags::parse("schedtrace=1000, scheddetail=1,sigquit=exit,").unwrap();
        assert_eq!(flags.schedtrace, Some(Duration::from_secs(1)));
        assert!(flags.scheddetail && flags.sigquit_exit);
        assert_eq!(
            DebugFlags::parse("schedtrace=250ms").unwrap().schedtrace,
            Some(Duration::from_millis(250))
        );
        assert_eq!(DebugFlags::parse("schedtrace=0").unwrap().schedtrace, None);
        assert_eq!(DebugFlags::parse("").unwrap(), DebugFlags::default());
        assert_eq!(
            DebugFlags::parse("schedtrace=86400s").unwrap().schedtrace,
            Some(Duration::from_secs(86400))
        );
        let error = DebugFlags::parse("schedtrace=18446744073709551615s").unwrap_err();
        assert!(
            error.contains("schedtrace") && error.contains("at most a day"),
            "{error}"
        );
        let flags = DebugFlags::parse("asyncpreemptoff=1,preemptslice=500us").unwrap();
        assert!(flags.async_preempt_off);
        assert_eq!(flags.preempt_slice, Some(Duration::from_micros(500)));
        assert!(DebugFlags::parse("preemptslice=0").is_err());
        assert!(DebugFlags::parse("asyncpreemptoff=yes").is_err());
    }

    #[test]
    fn malformed_values_name_the_variable_and_unknown_keys_are_kept() {
        for text in [
            "schedtrace=soon",
            "scheddetail=yes",
            "sigquit=maybe",
            "schedtrace",
        ] {
            let error = DebugFlags::parse(text).unwrap_err();
            assert!(error.contains("GORO_DEBUG"), "{text}: {error}");
        }
        let flags = DebugFlags::parse("futurekey=3,schedtrace=10").unwrap();
        assert_eq!(flags.unknown, vec!["futurekey".to_string()]);
        assert_eq!(flags.schedtrace, Some(Duration::from_millis(10)));
    }
}
