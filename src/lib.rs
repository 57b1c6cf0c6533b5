//! lookalike: content-based image retrieval. Index photo folders into SQLite + HNSW, find the
//! images that look like an example, restore blurred images, and measure retrieval accuracy.
//!
//! Data flows one way: [`crawl`] -> [`decode`] -> [`features`] -> [`store`] -> [`ann`] ->
//! [`query`] (and `eval`), both ranking through [`rank`]. [`index`] runs the pipeline and
//! [`status`] reports on an index; `cli` (cargo feature `cli`, on by default) is the
//! command-line front end over them.
//! [`restore`] is the deconvolution engine, usable by itself and behind the `deconv` features.
//! [`vector`] (distance kernels), `imageops` (image primitives) and [`rng`] (a seeded
//! generator) sit below all of them.

#![warn(missing_docs)]

pub mod ann;
pub mod cleanup;
#[cfg(feature = "cli")]
pub mod cli;
pub mod collection;
pub mod crawl;
pub mod decode;
pub(crate) mod desktop_trash;
pub mod duplicates;
pub mod error;
pub mod eval;
pub mod features;
pub mod globs;
pub mod graph;
pub(crate) mod held_dir;
pub(crate) mod imageops;
pub mod index;
pub(crate) mod nearest_first;
pub mod path_repr;
pub mod pca;
pub mod query;
pub mod query_expansion;
pub mod rank;
pub mod restore;
pub mod rng;
pub mod search_space;
#[cfg(feature = "serve")]
pub(crate) mod serve;
pub mod status;
pub mod store;
pub(crate) mod temp_file;
#[cfg(test)]
mod test_support;
pub(crate) mod text;
pub mod thumbnail;
pub mod vector;

pub use error::{Error, Result};
