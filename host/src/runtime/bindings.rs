//! The one `bindgen!` over `wit/`: every host capability implements its interface
//! from here.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "department-plugin",
    imports: { default: async },
    exports: { default: async },
});
