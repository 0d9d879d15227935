//! Reading our own memory for diagnostics: `process_vm_readv(2)` on our own
//! pid, and the loaded objects' unwind tables through `dl_iterate_phdr(3)`.
//! Only the goroutine dump (`diag/backtrace.rs`) uses these; neither is ever
//! called from a signal handler.

use std::io;

/// Copies `buf.len()` bytes at address `addr` of this process into `buf`
/// with `process_vm_readv(2)` on our own pid. The kernel does the copy: an
/// unmapped or unreadable address is an `EFAULT` error rather than a fault,
/// and bytes another thread writes meanwhile are read as whatever the copy
/// saw (no Rust-level data race: the memory is never read through a Rust
/// reference or pointer). A short copy is an error.
pub fn read_own_memory(addr: usize, buf: &mut [u8]) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which is writable for its length; the
    // kernel validates `remote` itself (EFAULT) and never writes it.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(super::last_error()),
        n if n as usize == buf.len() => Ok(()),
        _ => Err(io::Error::from_raw_os_error(libc::EFAULT)),
    }
}

/// Reads one machine word of our own memory (`read_own_memory`).
pub fn read_own_word(addr: usize) -> io::Result<usize> {
    let mut word = [0u8; 8];
    read_own_memory(addr, &mut word)?;
    Ok(usize::from_ne_bytes(word))
}

/// One object loaded in the process (the executable, a shared library, the
/// vDSO), as `dl_iterate_phdr` reports it, with copies of its unwind tables.
pub struct LoadedObject {
    /// Its path (empty for the main executable).
    pub name: String,
    /// Load bias: the address of the object's virtual address 0.
    pub bias: usize,
    /// The lowest and one-past-the-highest address of its `PT_LOAD` segments.
    pub range: (usize, usize),
    /// `.eh_frame_hdr` (`PT_GNU_EH_FRAME`): its address and a copy.
    pub eh_frame_hdr: Option<(usize, Vec<u8>)>,
    /// `.eh_frame`: its address and a copy, found by `find_eh_frame`.
    pub eh_frame: Option<(usize, Vec<u8>)>,
}

/// Finds `.eh_frame` from a copy of `.eh_frame_hdr` at its address: the
/// header's `eh_frame_ptr`. Supplied by the caller, which knows the format.
pub type FindEhFrame = fn(hdr_address: usize, hdr: &[u8]) -> Option<usize>;

/// Every loaded object, with copies of its unwind tables made while the
/// dynamic loader's lock is held (inside the `dl_iterate_phdr` callback), so
/// a concurrent `dlclose` cannot unmap them under the copy.
pub fn loaded_objects(find_eh_frame: FindEhFrame) -> Vec<LoadedObject> {
    struct State {
        find_eh_frame: FindEhFrame,
        objects: Vec<LoadedObject>,
    }
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `&mut State` passed to dl_iterate_phdr below,
        // used by nobody else during the call; `info` is valid for the
        // callback's duration (dl_iterate_phdr(3)).
        let (state, info) = unsafe { (&mut *data.cast::<State>(), &*info) };
        // SAFETY: as above; dl_iterate_phdr's info and the program headers
        // it points to stay mapped while the loader lock is held, that is
        // for the whole callback.
        if let Some(object) = unsafe { describe(info, state.find_eh_frame) } {
            state.objects.push(object);
        }
        0
    }
    let mut state = State {
        find_eh_frame,
        objects: Vec::new(),
    };
    // SAFETY: the callback only reads what dl_iterate_phdr hands it, and
    // `state` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(callback), (&raw mut state).cast()) };
    state.objects
}

/// One object's description (`loaded_objects`).
///
/// # Safety
/// Inside a `dl_iterate_phdr` callback, with the `info` it was given.
unsafe fn describe(info: &libc::dl_phdr_info, find_eh_frame: FindEhFrame) -> Option<LoadedObject> {
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return None;
    }
    // SAFETY: the loader guarantees `dlpi_phnum` headers at `dlpi_phdr`.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let bias = info.dlpi_addr as usize;
    let loads: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            (start, start.wrapping_add(h.p_memsz as usize))
        })
        .collect();
    let range = (
        loads.iter().map(|l| l.0).min()?,
        loads.iter().map(|l| l.1).max()?,
    );
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let mut object = LoadedObject {
        name,
        bias,
        range,
        eh_frame_hdr: None,
        eh_frame: None,
    };
    let Some(hdr) = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME) else {
        return Some(object);
    };
    let hdr_address = bias.wrapping_add(hdr.p_vaddr as usize);
    let hdr_len = hdr.p_memsz as usize;
    let within = |address: usize, len: usize| {
        loads
            .iter()
            .any(|&(start, end)| start <= address && address.saturating_add(len) <= end)
    };
    if !within(hdr_address, hdr_len) {
        return Some(object);
    }
    // SAFETY: inside a PT_LOAD segment of a loaded object, which the loader
    // lock keeps mapped during the callback; unwind tables are read-only.
    let hdr_bytes = unsafe { std::slice::from_raw_parts(hdr_address as *const u8, hdr_len) };
    let hdr_copy = hdr_bytes.to_vec();
    if let Some(eh_frame) = find_eh_frame(hdr_address, &hdr_copy) {
        // The segment holding `.eh_frame` bounds the walk over its entries.
        let end = loads
            .iter()
            .find(|&&(start, end)| start <= eh_frame && eh_frame < end)
            .map(|l| l.1);
        if let Some(end) = end {
            // SAFETY: [eh_frame, end) lies in a PT_LOAD segment, mapped and
            // read-only while the loader lock is held.
            let segment =
                unsafe { std::slice::from_raw_parts(eh_frame as *const u8, end - eh_frame) };
            let len = eh_frame_len(segment);
            object.eh_frame = Some((eh_frame, segment[..len].to_vec()));
        }
    }
    object.eh_frame_hdr = Some((hdr_address, hdr_copy));
    Some(object)
}

/// The length of an `.eh_frame` section starting at `bytes[0]`: its CIE and
/// FDE records, up to the zero terminator or the end of `bytes`.
fn eh_frame_len(bytes: &[u8]) -> usize {
    let mut offset = 0;
    while let Some(word) = bytes.get(offset..offset + 4) {
        let length = u32::from_ne_bytes(word.try_into().unwrap_or_default()) as usize;
        let record = match length {
            0 => return offset + 4,
            0xffff_ffff => match bytes.get(offset + 4..offset + 12) {
                Some(long) => {
                    let long = u64::from_ne_bytes(long.try_into().unwrap_or_default());
                    usize::try_from(long)
                        .unwrap_or(usize::MAX)
                        .saturating_add(12)
                }
                None => break,
            },
            _ => length + 4,
        };
        if offset.saturating_add(record) > bytes.len() {
            break;
        }
        offset += record;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_reports_unmapped_addresses() {
        let value: u64 = 0x1234_5678_9abc_def0;
        let word = read_own_word(&raw const value as usize).unwrap();
        assert_eq!(word as u64, value);
        let error = read_own_word(8).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EFAULT));
    }

    #[test]
    fn eh_frame_walk_stops_at_the_terminator() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&8u32.to_ne_bytes());
        bytes.extend_from_slice(&[1; 8]);
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&[9; 16]);
        assert_eq!(eh_frame_len(&bytes), 16);
        assert_eq!(eh_frame_len(&bytes[..10]), 0);
    }
}
