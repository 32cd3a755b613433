#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_plugin_extract::fuzz::rules(data));
