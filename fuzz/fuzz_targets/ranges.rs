#![no_main]
// See dpyfs::fuzzing::ranges for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::ranges(data);
});
