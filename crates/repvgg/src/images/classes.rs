//! The 1000 ImageNet-1k classes in the order of the official checkpoints' logits.
//!
//! Data: `data/imagenet1k_classes.tsv` (WordNet synset id and lemmas per line), taken from timm
//! 1.0.31 (Apache-2.0), `timm/data/_info/imagenet_synsets.txt` and
//! `imagenet_synset_to_lemma.txt`; the class order is the sorted synset ids.

/// The class table: comment lines (`#`), then one `synset<TAB>lemmas` line per class.
const TABLE: &str = include_str!("../../data/imagenet1k_classes.tsv");

/// Number of ImageNet-1k classes.
pub const IMAGENET_CLASSES: usize = 1000;

/// One ImageNet-1k class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageNetClass {
    /// WordNet synset id, e.g. `n01440764`.
    pub synset: &'static str,
    /// Comma-separated lemmas, e.g. `tench, Tinca tinca`.
    pub lemmas: &'static str,
}

impl ImageNetClass {
    /// The first lemma, e.g. `tench`.
    pub fn name(&self) -> &'static str {
        self.lemmas.split(',').next().unwrap_or(self.lemmas)
    }
}

/// The class of logit `index` (0-based), or `None` past 999.
pub fn imagenet_class(index: usize) -> Option<ImageNetClass> {
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .nth(index)
        .and_then(|l| l.split_once('\t'))
        .map(|(synset, lemmas)| ImageNetClass { synset, lemmas })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_1000_sorted_distinct_synsets() {
        let classes: Vec<ImageNetClass> = (0..IMAGENET_CLASSES)
            .map(|i| imagenet_class(i).expect("class"))
            .collect();
        assert!(imagenet_class(IMAGENET_CLASSES).is_none());
        assert!(classes.windows(2).all(|w| w[0].synset < w[1].synset));
        assert!(
            classes
                .iter()
                .all(|c| c.synset.len() == 9 && c.synset.starts_with('n'))
        );
        assert!(classes.iter().all(|c| !c.name().is_empty()));
        assert_eq!(classes[0].name(), "tench");
        assert_eq!(classes[1].name(), "goldfish");
        assert_eq!(classes[999].synset, "n15075141");
    }
}
