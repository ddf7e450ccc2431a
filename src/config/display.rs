//! How CAMs are drawn: the `[view]` settings the explorer starts with and then changes by key.
use crate::cam::colormap::Colormap;
use crate::cam::{Method, Normalization};

/// How CAMs are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Display {
    pub method: Method,
    pub normalization: Normalization,
    pub colormap: Colormap,
    pub opacity: f32,
    /// The share (0–1) of the map's positive range, above its zero, below which the overlay is
    /// transparent (0: every value coloured).
    pub heat_floor: f32,
    pub overlay: bool,
    pub raw_beside: bool,
    pub three_plane: bool,
}
