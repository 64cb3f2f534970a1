#![no_main]
// See dpyfs::fuzzing::xml_document for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dpyfs::fuzzing::xml_document(data);
});
