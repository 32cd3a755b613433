//! A filter built against `weir:filter@0.2.0`, a contract version the host
//! (0.1.x) does not support. The host must refuse it before instantiating,
//! naming both versions. Only `configure` is declared: the host refuses the
//! plugin by its export's version, without looking further.

wit_bindgen::generate!({
    inline: "
        package weir:filter@0.2.0;
        interface plugin {
            configure: func(config: string) -> result<_, string>;
        }
        world filter {
            export plugin;
        }
    ",
});

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct FutureContract;

impl exports::weir::filter::plugin::Guest for FutureContract {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
export!(FutureContract);
