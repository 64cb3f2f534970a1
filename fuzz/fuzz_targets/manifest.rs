#![no_main]
// See dpyfs::fuzzing::manifest_chunk for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::manifest_chunk(data);
});
