//! The one `bindgen!` over `wit/`: every host capability implements its interface
//! from here.

// The generated export wrappers use `unsafe` internally to build typed functions
// whose signatures the macro has already checked.
#![allow(unsafe_code)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "department-plugin",
    imports: { default: async },
    exports: { default: async },
});
