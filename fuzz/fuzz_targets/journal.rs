#![no_main]
// See dpyfs::fuzzing::journal_lines for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::journal_lines(data);
});
