//! Wire formats the city exchanges with others, as pure code: no storage, no
//! HTTP. `cap` is CAP 1.2 (OASIS Common Alerting Protocol): parse with every
//! fault named by line, write back, and areas as polygons.

pub mod cap;
