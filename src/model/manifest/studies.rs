//! What a manifest says about DICOM and NIfTI series: each plane's intensity mapping and
//! training protocol, which all of that plane's entries must agree on (one series is read once
//! for every task's model of its plane).
use super::Manifest;
use crate::data::study::{Intensity, SeriesRule, StudyOptions};
use crate::data::Plane;

impl Manifest {
    /// The study options these models ask for, under `rule`; an error names the two entries of
    /// one plane that disagree.
    pub fn study_options(&self, rule: SeriesRule) -> Result<StudyOptions, String> {
        let mut options = StudyOptions {
            rule,
            ..StudyOptions::default()
        };
        for plane in Plane::ALL {
            let mut intensity: Option<(String, Intensity)> = None;
            let mut protocol: Option<(String, String)> = None;
            for ((task, p), entry) in self.models() {
                if p != plane {
                    continue;
                }
                let name = format!("[models.{task}-{plane}]");
                let this = match &entry.intensity {
                    Some(text) => text.parse().map_err(|e| format!("{name}: {e}"))?,
                    None => Intensity::default(),
                };
                match &intensity {
                    Some((first, other)) if *other != this => {
                        return Err(format!(
                            "{first} has intensity \"{other}\" but {name} has \"{this}\": the \
                             {plane} models share one series, so they must agree"
                        ))
                    }
                    Some(_) => {}
                    None => intensity = Some((name.clone(), this)),
                }
                if let Some(this) = &entry.protocol {
                    match &protocol {
                        Some((first, other)) if other != this => {
                            return Err(format!(
                                "{first} has protocol \"{other}\" but {name} has \"{this}\": \
                                 the {plane} models share one series, so they must agree"
                            ))
                        }
                        Some(_) => {}
                        None => protocol = Some((name, this.clone())),
                    }
                }
            }
            options.intensity[plane.index()] = intensity.map(|(_, i)| i).unwrap_or_default();
            options.protocol[plane.index()] = protocol.map(|(_, p)| p);
        }
        Ok(options)
    }
}
