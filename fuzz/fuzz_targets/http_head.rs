#![no_main]
// A request head (and a chunked body) through the edge's rules: tiny_http::fuzz_head.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tiny_http::fuzz_head(data);
});
