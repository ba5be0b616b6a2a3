pub mod runtime { pub mod bindings; }
