#![no_main]
// See dpyfs::fuzzing::aws_chunked_body for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::aws_chunked_body(data);
});
