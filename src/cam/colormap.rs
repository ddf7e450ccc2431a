//! Colormaps for heatmap overlays: JET (the reference code's, via OpenCV), turbo, inferno, gray.
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

mod opencv_jet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    #[default]
    Jet,
    Turbo,
    Inferno,
    Gray,
}

impl Colormap {
    pub const ALL: [Colormap; 4] = [
        Colormap::Jet,
        Colormap::Turbo,
        Colormap::Inferno,
        Colormap::Gray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Colormap::Jet => "jet",
            Colormap::Turbo => "turbo",
            Colormap::Inferno => "inferno",
            Colormap::Gray => "gray",
        }
    }

    /// RGB for a value 0–255.
    pub fn rgb(self, value: u8) -> [u8; 3] {
        let t = f64::from(value) / 255.0;
        let [r, g, b] = match self {
            Colormap::Jet => return opencv_jet::OPENCV_JET[usize::from(value)],
            Colormap::Turbo => turbo(t),
            Colormap::Inferno => inferno(t),
            Colormap::Gray => [t, t, t],
        };
        [r, g, b].map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

impl FromStr for Colormap {
    type Err = super::UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Colormap::ALL
            .into_iter()
            .find(|c| c.name() == wanted)
            .ok_or(super::UnknownChoice {
                what: "colormap",
                given: s.to_string(),
                expected: "jet, turbo, inferno, gray",
            })
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// OpenCV's COLORMAP_JET in closed form: piecewise linear, dark blue → blue → cyan → yellow → red → dark red.
#[cfg(test)]
fn jet(t: f64) -> [f64; 3] {
    let ramp = |centre: f64| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
    [ramp(3.0), ramp(2.0), ramp(1.0)]
}

/// Google's Turbo, by its published polynomial approximation.
fn turbo(t: f64) -> [f64; 3] {
    let poly = |c: [f64; 6]| c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))));
    [
        poly([
            0.13572138,
            4.61539260,
            -42.66032258,
            132.13108234,
            -152.94239396,
            59.28637943,
        ]),
        poly([
            0.09140261,
            2.19418839,
            4.84296658,
            -14.18503333,
            4.27729857,
            2.82956604,
        ]),
        poly([
            0.10667330,
            12.64194608,
            -60.58204836,
            110.36276771,
            -89.90310912,
            27.34824973,
        ]),
    ]
}

/// Matplotlib's inferno, by a 6th-order polynomial fit.
fn inferno(t: f64) -> [f64; 3] {
    let c = [
        [
            0.000_218_940_369_090_9,
            0.001_651_004_631_001_012,
            -0.019_480_898_437_091_46,
        ],
        [
            0.106_513_419_720_064_8,
            0.563_956_436_258_139_5,
            3.932_712_388_889_277,
        ],
        [
            11.602_493_087_410_77,
            -3.972_853_965_665_698,
            -15.942_394_106_616_01,
        ],
        [
            -41.703_996_131_394_59,
            17.436_398_882_406_1,
            44.354_145_817_089_37,
        ],
        [
            77.162_935_699_427,
            -33.402_358_893_774_8,
            -81.807_309_634_584_02,
        ],
        [
            -71.319_428_245_162_12,
            32.626_064_264_464_24,
            73.209_519_858_376_84,
        ],
        [
            25.131_126_224_395_81,
            -12.242_668_952_835_34,
            -23.070_325_002_053_14,
        ],
    ];
    let channel = |k: usize| c.iter().rev().fold(0.0, |acc, row| acc * t + row[k]);
    [channel(0), channel(1), channel(2)]
}

/// The reference code's overlay: `np.uint8(heatmap * 0.3 + img * 0.5)`, in float64 and
/// truncated as NumPy does (the sum never exceeds 255).
pub fn blend_reference(slice: u8, heat: [u8; 3]) -> [u8; 3] {
    heat.map(|h| reference_channel(h, slice))
}

fn reference_channel(heat: u8, slice: u8) -> u8 {
    (f64::from(heat) * 0.3 + f64::from(slice) * 0.5) as u8
}

/// `blend_reference` of one channel as a table, `[heat][slice]`, for whole images.
pub fn reference_blend_table() -> &'static [[u8; 256]; 256] {
    static TABLE: OnceLock<Box<[[u8; 256]; 256]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([[0u8; 256]; 256]);
        for (heat, row) in table.iter_mut().enumerate() {
            for (slice, value) in row.iter_mut().enumerate() {
                *value = reference_channel(heat as u8, slice as u8);
            }
        }
        table
    })
}

/// An opacity blend for the explorer: values below `threshold` (see [`super::floor`]) leave
/// the slice untouched.
pub fn blend(slice: u8, value: u8, colormap: Colormap, opacity: f32, threshold: u16) -> [u8; 3] {
    if u16::from(value) < threshold {
        return [slice; 3];
    }
    colormap.rgb(value).map(|h| {
        (f32::from(h) * opacity + f32::from(slice) * (1.0 - opacity))
            .round()
            .clamp(0.0, 255.0) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_dark_blue_through_green_to_dark_red() {
        assert_eq!(Colormap::Jet.rgb(0), [0, 0, 128]);
        assert_eq!(Colormap::Jet.rgb(128)[1], 255);
        assert_eq!(Colormap::Jet.rgb(255), [128, 0, 0]);
    }

    #[test]
    fn opencvs_jet_table_is_the_piecewise_linear_jet_within_one() {
        for value in 0..=255u8 {
            let formula = jet(f64::from(value) / 255.0).map(|c| (c * 255.0).round() as i16);
            let table = Colormap::Jet.rgb(value).map(i16::from);
            for (a, b) in formula.iter().zip(table) {
                assert!((a - b).abs() <= 1, "{value}: {formula:?} against {table:?}");
            }
        }
    }

    #[test]
    fn turbo_and_inferno_match_their_published_endpoints() {
        let close = |a: [u8; 3], b: [u8; 3]| {
            a.iter()
                .zip(b)
                .all(|(&x, y)| (i16::from(x) - i16::from(y)).abs() <= 6)
        };
        assert!(
            close(Colormap::Turbo.rgb(0), [35, 23, 27]),
            "{:?}",
            Colormap::Turbo.rgb(0)
        );
        assert!(
            close(Colormap::Turbo.rgb(255), [144, 12, 0]),
            "{:?}",
            Colormap::Turbo.rgb(255)
        );
        assert!(
            close(Colormap::Inferno.rgb(0), [0, 0, 4]),
            "{:?}",
            Colormap::Inferno.rgb(0)
        );
        assert!(
            close(Colormap::Inferno.rgb(255), [252, 255, 164]),
            "{:?}",
            Colormap::Inferno.rgb(255)
        );
    }

    #[test]
    fn blends() {
        // 126.5 and 53.000…04 truncate, as NumPy's uint8 cast does.
        assert_eq!(blend_reference(100, [255, 0, 10]), [126, 50, 53]);
        let table = reference_blend_table();
        assert_eq!(table[255][100], 126);
        assert_eq!(table[255][255], 204);
        assert_eq!(blend(90, 10, Colormap::Gray, 0.5, 20), [90, 90, 90]);
        assert_eq!(blend(90, 200, Colormap::Gray, 0.5, 20), [145, 145, 145]);
    }
}
