#![no_main]
// See dpyfs::fuzzing::form_body for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::form_body(data);
});
