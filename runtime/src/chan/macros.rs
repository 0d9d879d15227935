//! The `select!` macro: crossbeam-channel's syntax over goro's channels.
//!
//! The parser munches one case at a time into an accumulator; the expansion
//! binds each case to its own variable and runs `chan::select::run`. Each
//! case's variable is named `case` by the munching step that parsed it, so
//! macro hygiene makes every one distinct without generating names.

/// Waits on several channel operations and completes exactly one (Go's
/// `select`), with crossbeam-channel's syntax:
///
/// ```
/// use std::time::Duration;
/// goro_runtime::run(|| {
///     let (tx, rx) = goro_runtime::chan::bounded::<u32>(1);
///     let (done_tx, done_rx) = goro_runtime::chan::bounded::<()>(0);
///     tx.send(7).unwrap();
///     let got = goro_runtime::select! {
///         recv(rx) -> value => value.ok(),
///         recv(done_rx) -> _ => None,
///         default(Duration::from_millis(10)) => None,
///     };
///     assert_eq!(got, Some(7));
///     drop(done_tx);
/// });
/// ```
///
/// Cases:
/// - `recv(receiver) -> result => body`: `result` is `Result<T, RecvError>`
///   (`Err` once the channel is closed and drained);
/// - `send(sender, value) -> result => body`: `result` is
///   `Result<(), SendError<T>>` (`Err` carries the value back if closed);
/// - `default => body`: runs if no case is ready right now;
/// - `default(duration) => body`: runs if no case becomes ready within
///   `duration`.
///
/// When several cases are ready, one is chosen uniformly at random. Without
/// a default the select waits, parking the goroutine once on all its cases.
/// Every send value is evaluated before the select starts (as in Go); those
/// of the cases not chosen are dropped.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@cases () @default () $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // recv(r) -> pattern => body
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        recv($r:expr) -> $p:pat => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)* (case [recv $r] [$p] [$body])) @default ($($default)*) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)* (case [recv $r] [$p] [$body])) @default ($($default)*) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        recv($r:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@cases ($($cases)* (case [recv $r] [$p] [$body])) @default ($($default)*) $($($rest)*)?)
    };
    // send(s, value) -> pattern => body
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)* (case [send $s, $v] [$p] [$body])) @default ($($default)*) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)* (case [send $s, $v] [$p] [$body])) @default ($($default)*) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)*)
        send($s:expr, $v:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@cases ($($cases)* (case [send $s, $v] [$p] [$body])) @default ($($default)*) $($($rest)*)?)
    };
    // default(duration) => body
    (@cases ($($cases:tt)*) @default ()
        default($d:expr) => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::until($d)) [$body]) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ()
        default($d:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::until($d)) [$body]) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ()
        default($d:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::until($d)) [$body]) $($($rest)*)?)
    };
    // default => body
    (@cases ($($cases:tt)*) @default ()
        default => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::NonBlocking) [$body]) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ()
        default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::NonBlocking) [$body]) $($rest)*)
    };
    (@cases ($($cases:tt)*) @default ()
        default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@cases ($($cases)*) @default ((
            $crate::chan::__private::Mode::NonBlocking) [$body]) $($($rest)*)?)
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)+) default $($rest:tt)*) => {
        ::core::compile_error!("goro::select!: more than one default case")
    };
    // Done: expand.
    (@cases ($($cases:tt)*) @default ($($default:tt)*)) => {
        $crate::__select_expand!(($($cases)*) ($($default)*))
    };
    (@cases ($($cases:tt)*) @default ($($default:tt)*) $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "goro::select!: expected `recv(r) -> v => ...`, `send(s, x) -> r => ...`, ",
            "`default => ...` or `default(duration) => ...`, found: ",
            ::core::stringify!($($rest)+)
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_expand {
    (($(($case:ident [$($op:tt)*] [$p:pat] [$body:expr]))*) ()) => {
        $crate::__select_expand!(@run ($(($case [$($op)*] [$p] [$body]))*)
            ($crate::chan::__private::Mode::Block)
            [::core::unreachable!("goro: a blocking select returned no case")])
    };
    (($(($case:ident [$($op:tt)*] [$p:pat] [$body:expr]))*) (($mode:expr) [$default:expr])) => {
        $crate::__select_expand!(@run ($(($case [$($op)*] [$p] [$body]))*) ($mode) [$default])
    };
    (@run ($(($case:ident [$($op:tt)*] [$p:pat] [$body:expr]))*) ($mode:expr) [$default:expr]) => {{
        $( let mut $case = $crate::__select_case!($($op)*); )*
        $crate::chan::__private::run(
            &mut [$(&mut $case as &mut dyn $crate::chan::__private::SelectCase),*],
            $mode,
        );
        $( if $case.is_selected() {
            let $p = $case.into_result();
            $body
        } else )* {
            $default
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_case {
    (recv $r:expr) => {
        $crate::chan::__private::RecvCase::new(&$r)
    };
    (send $s:expr, $v:expr) => {
        $crate::chan::__private::SendCase::new(&$s, $v)
    };
}
