//! A terminal that reads the bytes the explorer writes: enough of a VT parser for what
//! ratatui's crossterm backend and ratatui-image send (cursor moves, colours, erasures,
//! synchronized updates, tmux passthrough), a grid of cells, and the two image protocols the
//! test machines have no terminal for: kitty's graphics commands (APC `_G…`, chunked base64,
//! image ids, virtual placements shown through U+10EEEE placeholders) and iTerm2's inline files
//! (OSC `1337;File=…`). Written from the protocols' specifications
//! (<https://sw.kovidgoyal.net/kitty/graphics-protocol/>,
//! <https://iterm2.com/documentation-images.html>), not from ratatui-image's encoder, so a
//! wrong byte of either shows. What it does not model it refuses, naming the sequence.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use image::{ImageFormat, RgbaImage};
use ratatui::layout::Rect;

/// A writer that keeps every byte written to it, for a terminal backend (a clone reads them).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// The bytes written since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets the bytes written so far, keeping their room; returns how many there were.
    pub fn discard(&self) -> usize {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = bytes.len();
        bytes.clear();
        count
    }
}

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A terminal of `area` whose every byte goes to the returned capture. A fixed viewport: the
/// backend never asks a real terminal for its size.
pub fn capturing_terminal(
    area: ratatui::layout::Rect,
) -> (
    ratatui::Terminal<ratatui::backend::CrosstermBackend<Capture>>,
    Capture,
) {
    let written = Capture::default();
    let terminal = ratatui::Terminal::with_options(
        ratatui::backend::CrosstermBackend::new(written.clone()),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(area),
        },
    )
    .expect("a terminal");
    (terminal, written)
}

/// The placeholder character of kitty's Unicode placements.
pub const PLACEHOLDER: char = '\u{10EEEE}';

/// kitty's row/column diacritics (`gen/rowcolumn-diacritics.txt` in kitty's repository): the
/// n-th one on a placeholder means row, column or the id's high byte n.
const DIACRITICS: &str = concat!(
    "\u{305}\u{30D}\u{30E}\u{310}\u{312}\u{33D}\u{33E}\u{33F}\u{346}\u{34A}\u{34B}\u{34C}",
    "\u{350}\u{351}\u{352}\u{357}\u{35B}\u{363}\u{364}\u{365}\u{366}\u{367}\u{368}\u{369}",
    "\u{36A}\u{36B}\u{36C}\u{36D}\u{36E}\u{36F}\u{483}\u{484}\u{485}\u{486}\u{487}\u{592}",
    "\u{593}\u{594}\u{595}\u{597}\u{598}\u{599}\u{59C}\u{59D}\u{59E}\u{59F}\u{5A0}\u{5A1}",
    "\u{5A8}\u{5A9}\u{5AB}\u{5AC}\u{5AF}\u{5C4}\u{610}\u{611}\u{612}\u{613}\u{614}\u{615}",
    "\u{616}\u{617}\u{657}\u{658}\u{659}\u{65A}\u{65B}\u{65D}\u{65E}\u{6D6}\u{6D7}\u{6D8}",
    "\u{6D9}\u{6DA}\u{6DB}\u{6DC}\u{6DF}\u{6E0}\u{6E1}\u{6E2}\u{6E4}\u{6E7}\u{6E8}\u{6EB}",
    "\u{6EC}\u{730}\u{732}\u{733}\u{735}\u{736}\u{73A}\u{73D}\u{73F}\u{740}\u{741}\u{743}",
    "\u{745}\u{747}\u{749}\u{74A}\u{7EB}\u{7EC}\u{7ED}\u{7EE}\u{7EF}\u{7F0}\u{7F1}\u{7F3}",
    "\u{816}\u{817}\u{818}\u{819}\u{81B}\u{81C}\u{81D}\u{81E}\u{81F}\u{820}\u{821}\u{822}",
    "\u{823}\u{825}\u{826}\u{827}\u{829}\u{82A}\u{82B}\u{82C}\u{82D}\u{951}\u{953}\u{954}",
    "\u{F82}\u{F83}\u{F86}\u{F87}\u{135D}\u{135E}\u{135F}\u{17DD}\u{193A}\u{1A17}\u{1A75}",
    "\u{1A76}\u{1A77}\u{1A78}\u{1A79}\u{1A7A}\u{1A7B}\u{1A7C}\u{1B6B}\u{1B6D}\u{1B6E}",
    "\u{1B6F}\u{1B70}\u{1B71}\u{1B72}\u{1B73}\u{1CD0}\u{1CD1}\u{1CD2}\u{1CDA}\u{1CDB}",
    "\u{1CE0}\u{1DC0}\u{1DC1}\u{1DC3}\u{1DC4}\u{1DC5}\u{1DC6}\u{1DC7}\u{1DC8}\u{1DC9}",
    "\u{1DCB}\u{1DCC}\u{1DD1}\u{1DD2}\u{1DD3}\u{1DD4}\u{1DD5}\u{1DD6}\u{1DD7}\u{1DD8}",
    "\u{1DD9}\u{1DDA}\u{1DDB}\u{1DDC}\u{1DDD}\u{1DDE}\u{1DDF}\u{1DE0}\u{1DE1}\u{1DE2}",
    "\u{1DE3}\u{1DE4}\u{1DE5}\u{1DE6}\u{1DFE}\u{20D0}\u{20D1}\u{20D4}\u{20D5}\u{20D6}",
    "\u{20D7}\u{20DB}\u{20DC}\u{20E1}\u{20E7}\u{20E9}\u{20F0}\u{2CEF}\u{2CF0}\u{2CF1}",
    "\u{2DE0}\u{2DE1}\u{2DE2}\u{2DE3}\u{2DE4}\u{2DE5}\u{2DE6}\u{2DE7}\u{2DE8}\u{2DE9}",
    "\u{2DEA}\u{2DEB}\u{2DEC}\u{2DED}\u{2DEE}\u{2DEF}\u{2DF0}\u{2DF1}\u{2DF2}\u{2DF3}",
    "\u{2DF4}\u{2DF5}\u{2DF6}\u{2DF7}\u{2DF8}\u{2DF9}\u{2DFA}\u{2DFB}\u{2DFC}\u{2DFD}",
    "\u{2DFE}\u{2DFF}\u{A66F}\u{A67C}\u{A67D}\u{A6F0}\u{A6F1}\u{A8E0}\u{A8E1}\u{A8E2}",
    "\u{A8E3}\u{A8E4}\u{A8E5}\u{A8E6}\u{A8E7}\u{A8E8}\u{A8E9}\u{A8EA}\u{A8EB}\u{A8EC}",
    "\u{A8ED}\u{A8EE}\u{A8EF}\u{A8F0}\u{A8F1}\u{AAB0}\u{AAB2}\u{AAB3}\u{AAB7}\u{AAB8}",
    "\u{AABE}\u{AABF}\u{AAC1}\u{FE20}\u{FE21}\u{FE22}\u{FE23}\u{FE24}\u{FE25}\u{FE26}",
    "\u{10A0F}\u{10A38}\u{1D185}\u{1D186}\u{1D187}\u{1D188}\u{1D189}\u{1D1AA}\u{1D1AB}",
    "\u{1D1AC}\u{1D1AD}\u{1D242}\u{1D243}\u{1D244}",
);

/// The number a row/column diacritic stands for.
fn diacritic_value(mark: char) -> Option<u32> {
    DIACRITICS.chars().position(|d| d == mark).map(|n| n as u32)
}

/// A cell's foreground colour (kitty carries an image's id in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Default,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The character printed here and the combining marks after it.
    pub text: String,
    pub fg: Colour,
    /// The iTerm2 inline image shown in this cell (an index into [`Glass::iterm`]).
    pub iterm: Option<usize>,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            text: " ".into(),
            fg: Colour::Default,
            iterm: None,
        }
    }
}

/// An image the terminal holds after a kitty transmission.
#[derive(Debug, Clone)]
pub struct KittyImage {
    pub id: u32,
    /// The pixels, decoded from the format the transmission named.
    pub pixels: RgbaImage,
    /// `f`: 24 (RGB), 32 (RGBA) or 100 (PNG).
    pub format: u32,
    /// `o=z`: the payload was deflated.
    pub compressed: bool,
    /// The placement's size in cells (`c`, `r`), when given.
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    /// A virtual placement (`U=1`): shown wherever placeholders name the image.
    pub virtual_placement: bool,
    /// How many APC commands carried it.
    pub chunks: usize,
}

/// An iTerm2 inline image as placed.
#[derive(Debug, Clone)]
pub struct ItermImage {
    pub pixels: RgbaImage,
    pub format: Option<ImageFormat>,
    /// Where it was placed and the cells it covers.
    pub area: Rect,
}

/// A graphics command, as the terminal understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Graphic {
    /// A complete kitty transmission (all its chunks) of image `id`.
    KittyTransmit {
        id: u32,
        chunks: usize,
        payload: usize,
    },
    /// A kitty delete (`a=d`), with its target (`d`) and id.
    KittyDelete { target: char, id: Option<u32> },
    /// A kitty placement of a stored image (`a=p`).
    KittyPut { id: u32 },
    /// A kitty query (`a=q`).
    KittyQuery,
    /// An iTerm2 inline image (index into [`Glass::iterm`]) and its payload's length.
    Iterm { index: usize, payload: usize },
    /// A sixel image (not decoded here: xterm shows those, see `tests/suite/terminal.rs`).
    Sixel { bytes: usize },
}

/// What one write to the terminal held.
#[derive(Debug, Default)]
pub struct Frame {
    pub bytes: usize,
    /// Characters printed into cells (combining marks not counted).
    pub printed: usize,
    pub graphics: Vec<Graphic>,
    /// Synchronized-update starts and ends (CSI ?2026 h / l).
    pub sync_begin: usize,
    pub sync_end: usize,
    /// Whole-screen erasures (CSI 2 J).
    pub clears: usize,
    /// Sequences that went through tmux passthrough.
    pub passthrough: usize,
}

impl Frame {
    pub fn kitty_transmits(&self) -> Vec<u32> {
        self.graphics
            .iter()
            .filter_map(|g| match g {
                Graphic::KittyTransmit { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    pub fn iterm_images(&self) -> Vec<usize> {
        self.graphics
            .iter()
            .filter_map(|g| match g {
                Graphic::Iterm { index, .. } => Some(*index),
                _ => None,
            })
            .collect()
    }
}

/// One kitty placeholder cell, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceholderCell {
    pub x: u16,
    pub y: u16,
    pub id: u32,
    pub row: u32,
    pub column: u32,
}

/// A kitty transmission whose chunks are still arriving (`m=1`).
struct Upload {
    keys: BTreeMap<char, String>,
    base64: Vec<u8>,
    chunks: usize,
}

/// The terminal: a grid of cells, a cursor, the images it holds.
pub struct Glass {
    pub width: u16,
    pub height: u16,
    /// The pixels of one cell (what iTerm2 sizes an inline image's cells by).
    pub cell_pixels: (u32, u32),
    cells: Vec<Cell>,
    cursor: (u16, u16),
    saved: (u16, u16),
    fg: Colour,
    /// The cell the last base character went into (combining marks join it).
    last_printed: Option<(u16, u16)>,
    /// kitty: the images transmitted and not deleted, by id.
    pub kitty: BTreeMap<u32, KittyImage>,
    upload: Option<Upload>,
    /// iTerm2: every inline image placed, in order.
    pub iterm: Vec<ItermImage>,
}

impl Glass {
    pub fn new(width: u16, height: u16, cell_pixels: (u32, u32)) -> Glass {
        Glass {
            width,
            height,
            cell_pixels,
            cells: vec![Cell::default(); usize::from(width) * usize::from(height)],
            cursor: (0, 0),
            saved: (0, 0),
            fg: Colour::Default,
            last_printed: None,
            kitty: BTreeMap::new(),
            upload: None,
            iterm: Vec::new(),
        }
    }

    pub fn cell(&self, x: u16, y: u16) -> &Cell {
        &self.cells[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    fn cell_mut(&mut self, x: u16, y: u16) -> &mut Cell {
        &mut self.cells[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    /// Every cell, row by row (to compare the screen before and after a frame).
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// Reads one write; panics on anything malformed or not modelled, naming it.
    pub fn feed(&mut self, bytes: &[u8]) -> Frame {
        let mut frame = Frame {
            bytes: bytes.len(),
            ..Frame::default()
        };
        self.parse(bytes, &mut frame);
        assert!(
            self.upload.is_none(),
            "a kitty transmission was left unfinished (m=1 on its last chunk)"
        );
        frame
    }

    fn parse(&mut self, bytes: &[u8], frame: &mut Frame) {
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                0x1b => {
                    let kind = *bytes.get(at + 1).expect("an escape sequence cut off");
                    let rest = &bytes[at + 2..];
                    at += 2 + match kind {
                        b'[' => self.csi(rest, frame),
                        b'_' => {
                            let (body, length) = until_st(rest, false);
                            self.apc(body, frame);
                            length
                        }
                        b']' => {
                            let (body, length) = until_st(rest, true);
                            self.osc(body, frame);
                            length
                        }
                        b'P' => {
                            let (body, length) = until_st(rest, false);
                            self.dcs(body, frame);
                            length
                        }
                        b'7' => {
                            self.saved = self.cursor;
                            0
                        }
                        b'8' => {
                            self.cursor = self.saved;
                            0
                        }
                        other => panic!("ESC {:?} is not modelled", other as char),
                    };
                }
                b'\r' => {
                    self.cursor.0 = 0;
                    at += 1;
                }
                b'\n' => {
                    self.cursor.1 = (self.cursor.1 + 1).min(self.height - 1);
                    at += 1;
                }
                byte if byte < 0x20 || byte == 0x7f => {
                    panic!("control byte {byte:#04x} outside a sequence")
                }
                first => {
                    let length = match first {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf7 => 4,
                        _ => panic!("byte {first:#04x} starts no UTF-8 character"),
                    };
                    let text = std::str::from_utf8(&bytes[at..at + length])
                        .expect("printed text is UTF-8");
                    for c in text.chars() {
                        self.print(c, frame);
                    }
                    at += length;
                }
            }
        }
    }

    fn print(&mut self, c: char, frame: &mut Frame) {
        if zero_width(c) {
            let (x, y) = self
                .last_printed
                .expect("a combining mark with no character before it");
            self.cell_mut(x, y).text.push(c);
            return;
        }
        let (x, y) = self.cursor;
        assert!(
            x < self.width && y < self.height,
            "printing {c:?} outside the screen at {x},{y}"
        );
        let fg = self.fg;
        *self.cell_mut(x, y) = Cell {
            text: c.to_string(),
            fg,
            iterm: None,
        };
        self.last_printed = Some((x, y));
        self.cursor.0 += 1;
        frame.printed += 1;
    }

    /// A control sequence (after `ESC [`); returns its length.
    fn csi(&mut self, rest: &[u8], frame: &mut Frame) -> usize {
        let end = rest
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
            .expect("a control sequence without its final byte");
        let params = std::str::from_utf8(&rest[..end]).expect("CSI parameters are ASCII");
        let last = rest[end] as char;
        let numbers = |default: u16| -> Vec<u16> {
            params
                .split(';')
                .map(|p| p.parse().unwrap_or(default))
                .collect()
        };
        let count = || numbers(1)[0].max(1);
        match (params.strip_prefix('?'), last) {
            (Some(mode), 'h' | 'l') => match mode {
                "2026" if last == 'h' => frame.sync_begin += 1,
                "2026" => frame.sync_end += 1,
                // The cursor's visibility, the mouse, the alternate screen: not the glass.
                "25" | "1000" | "1002" | "1003" | "1006" | "1015" | "1049" => {}
                other => panic!("private mode ?{other} is not modelled"),
            },
            (None, 'H' | 'f') => {
                let place = numbers(1);
                let row = place[0].max(1) - 1;
                let column = place.get(1).copied().unwrap_or(1).max(1) - 1;
                self.cursor = (column.min(self.width - 1), row.min(self.height - 1));
            }
            (None, 'm') => self.sgr(params),
            (None, 'X') => {
                let (x, y) = self.cursor;
                for column in x..(x + count()).min(self.width) {
                    *self.cell_mut(column, y) = Cell::default();
                }
            }
            (None, 'A') => self.cursor.1 = self.cursor.1.saturating_sub(count()),
            (None, 'B') => self.cursor.1 = (self.cursor.1 + count()).min(self.height - 1),
            (None, 'C') => self.cursor.0 = (self.cursor.0 + count()).min(self.width - 1),
            (None, 'D') => self.cursor.0 = self.cursor.0.saturating_sub(count()),
            (None, 'J') if params == "2" || params == "3" => {
                self.cells.fill(Cell::default());
                frame.clears += 1;
            }
            _ => panic!("CSI {params}{last} is not modelled"),
        }
        end + 1
    }

    /// Select Graphic Rendition: only the foreground colour matters here.
    fn sgr(&mut self, params: &str) {
        let numbers: Vec<u16> = if params.is_empty() {
            vec![0]
        } else {
            params.split(';').map(|p| p.parse().unwrap_or(0)).collect()
        };
        let mut at = 0;
        while at < numbers.len() {
            let extended = |at: usize| -> (Option<Colour>, usize) {
                match numbers.get(at + 1) {
                    Some(5) => (Some(Colour::Indexed(numbers[at + 2] as u8)), 3),
                    Some(2) => (
                        Some(Colour::Rgb(
                            numbers[at + 2] as u8,
                            numbers[at + 3] as u8,
                            numbers[at + 4] as u8,
                        )),
                        5,
                    ),
                    other => panic!("SGR {} with {other:?}", numbers[at]),
                }
            };
            at += match numbers[at] {
                0 | 39 => {
                    self.fg = Colour::Default;
                    1
                }
                38 => {
                    let (colour, used) = extended(at);
                    self.fg = colour.unwrap_or(Colour::Default);
                    used
                }
                // Background and underline colours.
                48 | 58 => extended(at).1,
                n @ 30..=37 => {
                    self.fg = Colour::Indexed((n - 30) as u8);
                    1
                }
                n @ 90..=97 => {
                    self.fg = Colour::Indexed((n - 90 + 8) as u8);
                    1
                }
                // Attributes and named backgrounds.
                _ => 1,
            };
        }
    }

    /// An application program command: kitty's graphics (`G…`).
    fn apc(&mut self, body: &[u8], frame: &mut Frame) {
        let body = body
            .strip_prefix(b"G")
            .unwrap_or_else(|| panic!("APC {:?} is not modelled", lossy(body)));
        let (control, payload) = match body.iter().position(|&b| b == b';') {
            Some(at) => (&body[..at], &body[at + 1..]),
            None => (body, &body[body.len()..]),
        };
        let control = std::str::from_utf8(control).expect("kitty's control data is ASCII");
        let mut keys = BTreeMap::new();
        for pair in control.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("kitty key without a value: {pair:?} in {control:?}"));
            let mut chars = key.chars();
            let key = chars.next().expect("a key");
            assert!(
                chars.next().is_none(),
                "kitty keys are one character: {pair:?}"
            );
            assert!(
                keys.insert(key, value.to_string()).is_none(),
                "kitty key {key} twice in {control:?}"
            );
        }
        let more = match keys.get(&'m').map(String::as_str) {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => panic!("m={other}"),
        };
        if let Some(upload) = self.upload.as_mut() {
            // A continuation chunk carries only m (and q), its payload appended.
            assert!(
                keys.keys().all(|k| matches!(k, 'm' | 'q')),
                "a continuation chunk with keys {control:?}"
            );
            upload.base64.extend_from_slice(payload);
            upload.chunks += 1;
            check_chunk(payload, more);
            if !more {
                let upload = self.upload.take().expect("the upload");
                self.finish_upload(upload, frame);
            }
            return;
        }
        let action = keys.get(&'a').map_or("t", String::as_str);
        match action {
            "t" | "T" => {
                check_chunk(payload, more);
                let upload = Upload {
                    keys,
                    base64: payload.to_vec(),
                    chunks: 1,
                };
                if more {
                    self.upload = Some(upload);
                } else {
                    self.finish_upload(upload, frame);
                }
            }
            "p" => {
                let id = number(&keys, 'i').expect("a put names its image");
                let image = self
                    .kitty
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("a put of image {id}, never transmitted"));
                image.virtual_placement |= keys.get(&'U').is_some_and(|u| u == "1");
                frame.graphics.push(Graphic::KittyPut { id });
            }
            "d" => {
                let target = keys.get(&'d').and_then(|d| d.chars().next()).unwrap_or('a');
                let id = number(&keys, 'i');
                match target {
                    // Placements only: a virtual placement's image stays until freed.
                    'a' | 'i' => {}
                    'A' => self.kitty.clear(),
                    'I' => {
                        self.kitty
                            .remove(&id.expect("d=I names an image"))
                            .expect("a delete of an image the terminal holds");
                    }
                    other => panic!("kitty delete d={other} is not modelled"),
                }
                frame.graphics.push(Graphic::KittyDelete { target, id });
            }
            "q" => frame.graphics.push(Graphic::KittyQuery),
            other => panic!("kitty action a={other} is not modelled"),
        }
    }

    fn finish_upload(&mut self, upload: Upload, frame: &mut Frame) {
        let keys = &upload.keys;
        let id = number(keys, 'i').expect("a transmission with an image id (i=)");
        assert!(id > 0, "image id 0 cannot be named by a placeholder");
        let medium = keys.get(&'t').map_or("d", String::as_str);
        assert_eq!(medium, "d", "only direct transmission (t=d) is modelled");
        let format = number(keys, 'f').unwrap_or(32);
        let compressed = match keys.get(&'o').map(String::as_str) {
            None => false,
            Some("z") => true,
            Some(other) => panic!("o={other}"),
        };
        let decoded = base64(&upload.base64);
        let payload = decoded.len();
        let data = if compressed {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&decoded[..])
                .read_to_end(&mut out)
                .expect("an o=z payload inflates");
            out
        } else {
            decoded
        };
        let pixels = match format {
            24 | 32 => {
                let width = number(keys, 's').expect("s= (width) for raw pixels");
                let height = number(keys, 'v').expect("v= (height) for raw pixels");
                let channels = (format / 8) as usize;
                assert_eq!(
                    data.len(),
                    width as usize * height as usize * channels,
                    "f={format} s={width} v={height}: the payload's length"
                );
                if format == 32 {
                    RgbaImage::from_raw(width, height, data).expect("the RGBA pixels")
                } else {
                    image::RgbImage::from_raw(width, height, data)
                        .map(|rgb| image::DynamicImage::ImageRgb8(rgb).to_rgba8())
                        .expect("the RGB pixels")
                }
            }
            100 => image::load_from_memory_with_format(&data, ImageFormat::Png)
                .expect("an f=100 payload is a PNG")
                .to_rgba8(),
            other => panic!("f={other}"),
        };
        let placement = keys.get(&'a').is_some_and(|a| a == "T");
        let image = KittyImage {
            id,
            pixels,
            format,
            compressed,
            cols: number(keys, 'c').map(|c| c as u16),
            rows: number(keys, 'r').map(|r| r as u16),
            virtual_placement: placement && keys.get(&'U').is_some_and(|u| u == "1"),
            chunks: upload.chunks,
        };
        frame.graphics.push(Graphic::KittyTransmit {
            id,
            chunks: upload.chunks,
            payload,
        });
        // A transmission under an id the terminal holds replaces that image.
        self.kitty.insert(id, image);
    }

    /// An operating system command: iTerm2's inline images (`1337;File=…`).
    fn osc(&mut self, body: &[u8], frame: &mut Frame) {
        let body = body
            .strip_prefix(b"1337;File=")
            .unwrap_or_else(|| panic!("OSC {:?} is not modelled", lossy(body)));
        let colon = body
            .iter()
            .position(|&b| b == b':')
            .expect("File= arguments end with ':'");
        let arguments = std::str::from_utf8(&body[..colon]).expect("arguments are ASCII");
        let mut args = BTreeMap::new();
        for pair in arguments.split(';') {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("File= argument {pair:?}"));
            args.insert(key, value);
        }
        assert_eq!(
            args.get("inline"),
            Some(&"1"),
            "an inline image: {arguments}"
        );
        let data = base64(&body[colon + 1..]);
        if let Some(size) = args.get("size") {
            assert_eq!(
                size.parse::<usize>().ok(),
                Some(data.len()),
                "size= is the file's length"
            );
        }
        let format = image::guess_format(&data).ok();
        let pixels = image::load_from_memory(&data)
            .expect("the inline file is an image")
            .to_rgba8();
        let pixels_of = |key: &str, actual: u32| -> u32 {
            match args.get(key) {
                None | Some(&"auto") => actual,
                Some(value) => {
                    let px: u32 = value
                        .strip_suffix("px")
                        .unwrap_or_else(|| panic!("{key}={value}: only pixels are modelled"))
                        .parse()
                        .expect("a pixel count");
                    assert_eq!(px, actual, "{key}= is the image's own size");
                    px
                }
            }
        };
        let width = pixels_of("width", pixels.width());
        let height = pixels_of("height", pixels.height());
        assert_eq!(
            args.get("doNotMoveCursor"),
            Some(&"1"),
            "only images that leave the cursor are modelled"
        );
        let (x, y) = self.cursor;
        let cols = width.div_ceil(self.cell_pixels.0) as u16;
        let rows = height.div_ceil(self.cell_pixels.1) as u16;
        let area =
            Rect::new(x, y, cols, rows).intersection(Rect::new(0, 0, self.width, self.height));
        let index = self.iterm.len();
        for row in area.top()..area.bottom() {
            for column in area.left()..area.right() {
                *self.cell_mut(column, row) = Cell {
                    iterm: Some(index),
                    ..Cell::default()
                };
            }
        }
        self.iterm.push(ItermImage {
            pixels,
            format,
            area,
        });
        frame.graphics.push(Graphic::Iterm {
            index,
            payload: data.len(),
        });
    }

    /// A device control string: tmux passthrough (its inner escapes doubled) or a sixel.
    fn dcs(&mut self, body: &[u8], frame: &mut Frame) {
        if let Some(inner) = body.strip_prefix(b"tmux;") {
            let mut unwrapped = Vec::with_capacity(inner.len());
            let mut at = 0;
            while at < inner.len() {
                if inner[at] == 0x1b {
                    assert_eq!(inner.get(at + 1), Some(&0x1b), "a lone ESC inside tmux;");
                    at += 1;
                }
                unwrapped.push(inner[at]);
                at += 1;
            }
            frame.passthrough += 1;
            self.parse(&unwrapped, frame);
            return;
        }
        let start = body
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b';'))
            .unwrap_or(body.len());
        assert_eq!(
            body.get(start),
            Some(&b'q'),
            "DCS {:?} is not modelled",
            lossy(&body[..body.len().min(16)])
        );
        frame.graphics.push(Graphic::Sixel { bytes: body.len() });
    }

    /// The kitty placeholders on screen, decoded as kitty does: a cell's diacritics give its
    /// row, column and the id's high byte; one without them continues the cell to its left
    /// (same colour: the next column of the same row of the same image).
    pub fn placeholders(&self) -> Vec<PlaceholderCell> {
        let mut found = Vec::new();
        for y in 0..self.height {
            let mut left: Option<(Colour, u32, u32, u32)> = None;
            for x in 0..self.width {
                let cell = self.cell(x, y);
                let mut chars = cell.text.chars();
                if chars.next() != Some(PLACEHOLDER) {
                    left = None;
                    continue;
                }
                let marks: Vec<u32> = chars
                    .map(|m| diacritic_value(m).unwrap_or_else(|| panic!("{m:?} is no diacritic")))
                    .collect();
                assert!(marks.len() <= 3, "{} diacritics at {x},{y}", marks.len());
                let inherited = left.filter(|(fg, ..)| *fg == cell.fg);
                let row = marks
                    .first()
                    .copied()
                    .or(inherited.map(|(_, row, ..)| row))
                    .unwrap_or(0);
                let same_row = inherited.filter(|(_, r, ..)| *r == row);
                let column = marks
                    .get(1)
                    .copied()
                    .or(same_row.map(|(_, _, column, _)| column + 1))
                    .unwrap_or(0);
                let high = marks
                    .get(2)
                    .copied()
                    .or(same_row.map(|(.., high)| high))
                    .unwrap_or(0);
                let low = match cell.fg {
                    Colour::Rgb(r, g, b) => u32::from_be_bytes([0, r, g, b]),
                    Colour::Indexed(n) => u32::from(n),
                    Colour::Default => panic!("a placeholder at {x},{y} without a colour (id)"),
                };
                found.push(PlaceholderCell {
                    x,
                    y,
                    id: (high << 24) | low,
                    row,
                    column,
                });
                left = Some((cell.fg, row, column, high));
            }
        }
        found
    }

    /// The kitty images the placeholders on screen show, each with the cells it covers.
    pub fn kitty_on_screen(&self) -> BTreeMap<u32, Vec<PlaceholderCell>> {
        let mut images: BTreeMap<u32, Vec<PlaceholderCell>> = BTreeMap::new();
        for cell in self.placeholders() {
            images.entry(cell.id).or_default().push(cell);
        }
        images
    }

    /// The iTerm2 images still showing in some cell, each with the cells it shows in.
    pub fn iterm_on_screen(&self) -> BTreeMap<usize, Vec<(u16, u16)>> {
        let mut images: BTreeMap<usize, Vec<(u16, u16)>> = BTreeMap::new();
        for y in 0..self.height {
            for x in 0..self.width {
                if let Some(index) = self.cell(x, y).iterm {
                    images.entry(index).or_default().push((x, y));
                }
            }
        }
        images
    }
}

/// The rectangle `cells` fill, if they fill one whole, each at its own row and column of the
/// image (row = y − top, column = x − left).
pub fn placed_rect(cells: &[PlaceholderCell]) -> Result<Rect, String> {
    let left = cells.iter().map(|c| c.x).min().ok_or("no cells")?;
    let top = cells.iter().map(|c| c.y).min().ok_or("no cells")?;
    let right = cells.iter().map(|c| c.x).max().ok_or("no cells")? + 1;
    let bottom = cells.iter().map(|c| c.y).max().ok_or("no cells")? + 1;
    let rect = Rect::new(left, top, right - left, bottom - top);
    if cells.len() != usize::from(rect.width) * usize::from(rect.height) {
        return Err(format!("{} cells do not fill {rect:?}", cells.len()));
    }
    for cell in cells {
        let at = (u32::from(cell.y - top), u32::from(cell.x - left));
        if (cell.row, cell.column) != at {
            return Err(format!(
                "the cell at {},{} shows the image's row {} column {}, not {at:?}",
                cell.x, cell.y, cell.row, cell.column
            ));
        }
    }
    Ok(rect)
}

/// The rectangle `cells` (x, y) fill, if they fill one whole.
pub fn covered_rect(cells: &[(u16, u16)]) -> Result<Rect, String> {
    let left = cells.iter().map(|c| c.0).min().ok_or("no cells")?;
    let top = cells.iter().map(|c| c.1).min().ok_or("no cells")?;
    let right = cells.iter().map(|c| c.0).max().ok_or("no cells")? + 1;
    let bottom = cells.iter().map(|c| c.1).max().ok_or("no cells")? + 1;
    let rect = Rect::new(left, top, right - left, bottom - top);
    if cells.len() != usize::from(rect.width) * usize::from(rect.height) {
        return Err(format!("{} cells do not fill {rect:?}", cells.len()));
    }
    Ok(rect)
}

/// Characters a terminal adds to the cell before them instead of printing.
fn zero_width(c: char) -> bool {
    diacritic_value(c).is_some()
        || matches!(c, '\u{300}'..='\u{36F}' | '\u{200B}'..='\u{200D}' | '\u{FE0F}')
}

/// A string sequence's body and its length with the terminator: up to ST (`ESC \`), or BEL
/// too where `bell` (OSC). Inside tmux passthrough an escaped ESC is doubled: skipped here.
fn until_st(rest: &[u8], bell: bool) -> (&[u8], usize) {
    let mut at = 0;
    while at < rest.len() {
        match rest[at] {
            0x07 if bell => return (&rest[..at], at + 1),
            0x1b => match rest.get(at + 1).copied() {
                Some(b'\\') => return (&rest[..at], at + 2),
                Some(0x1b) => at += 2,
                other => panic!("ESC {other:?} inside a string sequence"),
            },
            _ => at += 1,
        }
    }
    panic!("a string sequence without its terminator")
}

/// A kitty chunk's payload: base64 of at most 4096 bytes, a multiple of 4 unless the last.
fn check_chunk(payload: &[u8], more: bool) {
    assert!(
        payload.len() <= 4096,
        "a chunk of {} base64 bytes (at most 4096)",
        payload.len()
    );
    if more {
        assert_eq!(
            payload.len() % 4,
            0,
            "a chunk before the last must be whole base64 quads"
        );
    }
}

fn number(keys: &BTreeMap<char, String>, key: char) -> Option<u32> {
    keys.get(&key).map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
    })
}

/// Standard base64 with padding (RFC 4648 §4), strictly: any other byte is an error.
pub fn base64(text: &[u8]) -> Vec<u8> {
    fn value(b: u8) -> u32 {
        match b {
            b'A'..=b'Z' => u32::from(b - b'A'),
            b'a'..=b'z' => u32::from(b - b'a') + 26,
            b'0'..=b'9' => u32::from(b - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("{:?} is not base64", other as char),
        }
    }
    assert_eq!(text.len() % 4, 0, "base64 of {} bytes", text.len());
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (n, quad) in text.chunks(4).enumerate() {
        let padding = quad.iter().rev().take_while(|&&b| b == b'=').count();
        assert!(
            padding <= 2 && (padding == 0 || n == text.len() / 4 - 1),
            "'=' inside base64"
        );
        let bits = quad[..4 - padding]
            .iter()
            .fold(0u32, |bits, &b| (bits << 6) | value(b))
            << (6 * padding);
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

#[cfg(test)]
mod tests {
    use image::Rgba;

    use super::*;

    fn encode64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for group in bytes.chunks(3) {
            let bits = group
                .iter()
                .enumerate()
                .fold(0u32, |bits, (n, &b)| bits | (u32::from(b) << (16 - 8 * n)));
            for n in 0..4 {
                if n <= group.len() {
                    text.push(ALPHABET[((bits >> (18 - 6 * n)) & 63) as usize] as char);
                } else {
                    text.push('=');
                }
            }
        }
        text
    }

    #[test]
    fn base64_decodes_the_rfc_vectors() {
        for (text, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64(text.as_bytes()), plain.as_bytes(), "{text}");
            assert_eq!(encode64(plain.as_bytes()), text);
        }
    }

    /// A 2×1-cell kitty image (RGBA, 2×1 pixels) sent in two chunks under `id`, its
    /// placeholders printed at row `y`, columns 0 and 1 (the second inheriting its place).
    fn kitty_image(id: u32, colour: [u8; 4], y: u16) -> (Vec<u8>, RgbaImage) {
        let pixels = RgbaImage::from_pixel(2, 1, Rgba(colour));
        let payload = encode64(pixels.as_raw());
        let (head, tail) = payload.split_at(4);
        let [high, r, g, b] = id.to_be_bytes();
        let marks: String = [0, 0, u32::from(high)]
            .iter()
            .map(|&n| DIACRITICS.chars().nth(n as usize).expect("a diacritic"))
            .collect();
        let bytes = format!(
            "\x1b[{};1H\x1b[38;2;{r};{g};{b}m\x1b_Gq=2,i={id},a=T,U=1,f=32,t=d,s=2,v=1,c=2,r=1,m=1;{head}\x1b\\\
             \x1b_Gm=0;{tail}\x1b\\{PLACEHOLDER}{marks}{PLACEHOLDER}",
            y + 1
        );
        (bytes.into_bytes(), pixels)
    }

    #[test]
    fn kitty_chunks_ids_and_placeholders_are_read_back() {
        let mut glass = Glass::new(4, 2, (10, 20));
        let id = 0x0301_0203;
        let (bytes, pixels) = kitty_image(id, [9, 8, 7, 255], 0);
        let frame = glass.feed(&bytes);
        assert_eq!(
            frame.graphics,
            [Graphic::KittyTransmit {
                id,
                chunks: 2,
                payload: 8
            }]
        );
        assert_eq!(glass.kitty[&id].pixels, pixels);
        let on_screen = glass.kitty_on_screen();
        assert_eq!(on_screen.keys().collect::<Vec<_>>(), [&id]);
        assert_eq!(placed_rect(&on_screen[&id]), Ok(Rect::new(0, 0, 2, 1)));
    }

    #[test]
    fn a_kitty_image_partly_covered_by_another_shows_as_two() {
        let mut glass = Glass::new(4, 2, (10, 20));
        glass.feed(&kitty_image(5, [1, 1, 1, 255], 0).0);
        // Image 6 over the first cell only: image 5 still shows in the second.
        let (bytes, _) = kitty_image(6, [2, 2, 2, 255], 0);
        let text = String::from_utf8(bytes).expect("text");
        let one_cell = text.trim_end_matches(PLACEHOLDER);
        glass.feed(one_cell.as_bytes());
        let on_screen = glass.kitty_on_screen();
        assert_eq!(on_screen.keys().collect::<Vec<_>>(), [&5, &6]);
        // The remnant, with no diacritics and no cell of its image to its left, is read as
        // image 5's first cell.
        assert_eq!(placed_rect(&on_screen[&5]), Ok(Rect::new(1, 0, 1, 1)));
    }

    #[test]
    fn an_iterm2_image_partly_covered_by_a_smaller_one_shows_as_two() {
        let mut glass = Glass::new(4, 3, (10, 20));
        let file = |width: u32, height: u32| -> String {
            let mut png = Vec::new();
            image::DynamicImage::ImageRgba8(RgbaImage::new(width, height))
                .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                .expect("a PNG");
            format!(
                "\x1b[1;1H\x1b]1337;File=inline=1;size={};width={width}px;height={height}px;\
                 doNotMoveCursor=1:{}\x07",
                png.len(),
                encode64(&png)
            )
        };
        glass.feed(file(20, 40).as_bytes());
        assert_eq!(
            glass.iterm_on_screen()[&0].len(),
            4,
            "2×2 cells of 10×20 pixels"
        );
        glass.feed(file(10, 20).as_bytes());
        let on_screen = glass.iterm_on_screen();
        assert_eq!(on_screen.keys().collect::<Vec<_>>(), [&0, &1]);
        assert_eq!(on_screen[&0].len(), 3);
        // Text over the rest of the first image leaves the second alone.
        glass.feed(b"\x1b[1;2H \x1b[2;1H  ");
        assert_eq!(glass.iterm_on_screen().keys().collect::<Vec<_>>(), [&1]);
    }

    #[test]
    fn tmux_passthrough_is_unwrapped() {
        let mut glass = Glass::new(4, 2, (10, 20));
        let (bytes, pixels) = kitty_image(7, [3, 4, 5, 255], 1);
        let text = String::from_utf8(bytes).expect("text");
        let (graphics, placeholders) = text.split_at(text.find(PLACEHOLDER).expect("cells"));
        let (moves, apc) = graphics.split_at(graphics.find("\x1b_G").expect("the APC"));
        let wrapped = format!(
            "{moves}\x1bPtmux;{}\x1b\\{placeholders}",
            apc.replace('\x1b', "\x1b\x1b")
        );
        let frame = glass.feed(wrapped.as_bytes());
        assert_eq!(frame.passthrough, 1);
        assert_eq!(glass.kitty[&7].pixels, pixels);
        assert_eq!(
            placed_rect(&glass.kitty_on_screen()[&7]),
            Ok(Rect::new(0, 1, 2, 1))
        );
    }

    #[test]
    #[should_panic(expected = "a continuation chunk with keys")]
    fn a_continuation_chunk_may_carry_only_m_and_q() {
        let mut glass = Glass::new(4, 2, (10, 20));
        glass.feed(b"\x1b_Gi=1,a=T,f=32,s=1,v=1,m=1;AAAA\x1b\\\x1b_Gi=1,m=0;AAAA\x1b\\");
    }
}
