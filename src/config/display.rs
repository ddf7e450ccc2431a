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
    pub heat_floor: u8,
    pub overlay: bool,
    pub raw_beside: bool,
    pub three_plane: bool,
}
