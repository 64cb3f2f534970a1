#![no_main]
// See dpyfs::fuzzing::acl_request for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::acl_request(data);
});
