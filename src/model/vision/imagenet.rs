//! ImageNet's 1,000 class names in torchvision's order (index k is output k of its
//! classifiers), as torchvision's weights list them (`ResNet18_Weights.IMAGENET1K_V1.meta
//! ["categories"]`): "tench", "goldfish", … "toilet tissue".
const NAMES: &str = include_str!("imagenet_classes.txt");

/// Outputs of an ImageNet classifier.
pub const CLASSES: usize = 1000;

/// The class names, index k for output k.
pub fn class_names() -> Vec<&'static str> {
    NAMES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_a_thousand_in_torchvision_order() {
        let names = class_names();
        assert_eq!(names.len(), CLASSES);
        assert_eq!(names[0], "tench");
        assert_eq!(names[207], "golden retriever");
        assert_eq!(names[999], "toilet tissue");
    }
}
