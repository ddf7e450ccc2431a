//! Errors that carry a cause (the OS's words, libtorch's) say it once: printed as a chain
//! (`{:#}`, as the binary prints errors), every message reads once, cause last.
use std::path::PathBuf;

use kneecam::cam::store::StoreError;
use kneecam::cam::CamError;
use kneecam::data::dataset::DatasetError;
use kneecam::data::labels::LabelError;
use kneecam::data::npy::NpyError;
use kneecam::data::phantom::PhantomError;
use kneecam::model::manifest::{ManifestError, ModelError};
use kneecam::model::train::TrainError;
use kneecam::model::weights::WeightsError;

const CAUSE: &str = "disk on fire";

fn io() -> std::io::Error {
    std::io::Error::other(CAUSE)
}

fn torch() -> tch::TchError {
    tch::TchError::Torch(CAUSE.into())
}

fn path() -> PathBuf {
    PathBuf::from("some/file")
}

/// The error as the binary prints it: the whole chain.
fn chain(err: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(err))
}

fn says_once(err: impl std::error::Error + Send + Sync + 'static) {
    let text = chain(err);
    assert_eq!(text.matches(CAUSE).count(), 1, "{text}");
    assert!(text.ends_with(CAUSE), "the cause comes last: {text}");
    assert!(text.contains("some/file"), "{text}");
}

#[test]
fn io_causes_are_said_once() {
    says_once(NpyError::Io {
        path: path(),
        error: io(),
    });
    says_once(LabelError::Io {
        path: path(),
        error: io(),
    });
    says_once(DatasetError::Io {
        path: path(),
        error: io(),
    });
    says_once(PhantomError::Io {
        path: path(),
        error: io(),
    });
    says_once(StoreError::Io {
        path: path(),
        error: io(),
    });
    says_once(ManifestError::Read {
        path: path(),
        error: io(),
    });
    says_once(ManifestError::Write {
        path: path(),
        error: io(),
    });
    says_once(ModelError::Read {
        path: path(),
        error: io(),
    });
    says_once(WeightsError::Io {
        path: path(),
        error: io(),
    });
    says_once(ModelError::from(WeightsError::Io {
        path: path(),
        error: io(),
    }));
}

#[test]
fn libtorch_causes_are_said_once() {
    says_once(WeightsError::Copy {
        path: path(),
        name: "classifer.weight".into(),
        error: torch(),
    });
    says_once(TrainError::Save {
        path: path(),
        error: torch(),
    });
    for err in [
        chain(TrainError::from(torch())),
        chain(CamError::from(torch())),
    ] {
        assert_eq!(err.matches(CAUSE).count(), 1, "{err}");
    }
}

#[test]
fn a_folder_given_as_an_exam_is_named_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = kneecam::data::npy::read_volume(dir.path()).expect_err("a folder");
    assert_eq!(
        chain(err),
        format!(
            "{}: is a folder, expected a .npy file",
            dir.path().display()
        )
    );
}

#[test]
fn a_missing_exam_says_why_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("0000.npy");
    let text = chain(kneecam::data::npy::read_volume(&missing).expect_err("missing"));
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{text}"
    );
}

#[test]
fn model_loading_engine_and_export_errors_say_their_cause_once() {
    use kneecam::data::{Plane, Task};
    use kneecam::engine::EngineError;
    use kneecam::model::loaded::LoadError;
    use kneecam::tui::export::ExportError;
    let entry = || LoadError::Entry {
        dir: path(),
        task: Task::Acl,
        plane: Plane::Sagittal,
        error: Box::new(ModelError::Read {
            path: path(),
            error: io(),
        }),
    };
    let text = chain(entry());
    assert!(
        text.starts_with("could not load the acl sagittal model of some/file"),
        "{text}"
    );
    says_once(entry());
    says_once(EngineError::Load(entry()));
    says_once(LoadError::File(Box::new(ModelError::Read {
        path: path(),
        error: io(),
    })));
    says_once(ExportError::Io {
        doing: "writing some/file".into(),
        error: io(),
    });
}

#[test]
fn a_config_file_that_cannot_be_read_says_its_cause_once() {
    says_once(kneecam::config::ConfigError::Read {
        file: path(),
        error: io(),
    });
}
