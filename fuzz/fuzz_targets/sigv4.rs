#![no_main]
// See dpyfs::fuzzing::sigv4_request for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::sigv4_request(data);
});
