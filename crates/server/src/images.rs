//! Image name globs, for assignments and agent token scopes.
//!
//! They follow the policy's path globs with `/` separating the parts of an
//! image name: `shop/*` matches `shop/web:1.4` but not `shop/team/web:1`,
//! `shop/**` matches both, `**` matches every image.

use ldguard_policy::glob::{Glob, GlobStyle};

#[derive(Clone, Debug, Default)]
pub struct ImageGlobs(Vec<Glob>);

impl ImageGlobs {
    pub fn parse(patterns: &[String]) -> Result<ImageGlobs, String> {
        patterns
            .iter()
            .map(|p| {
                if p.starts_with('/') {
                    return Err(format!(
                        "image glob {p:?}: image names do not start with `/`"
                    ));
                }
                Glob::new(&format!("/{p}"), GlobStyle::Path).map_err(|e| {
                    let hint = e.hint.map(|h| format!(" ({h})")).unwrap_or_default();
                    format!("image glob {p:?}: {}{hint}", e.message)
                })
            })
            .collect::<Result<_, _>>()
            .map(ImageGlobs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The longest matching pattern's length (more specific wins), if any matches.
    pub fn best_match(&self, image: &str) -> Option<usize> {
        let path = format!("/{image}");
        self.0
            .iter()
            .filter(|g| g.is_match(path.as_bytes()))
            .map(|g| g.as_str().len())
            .max()
    }

    /// Whether an agent scoped by these globs may act for `image`; an empty
    /// scope means every image.
    pub fn allows(&self, image: &str) -> bool {
        self.is_empty() || self.best_match(image).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> ImageGlobs {
        ImageGlobs::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn segments_and_specificity() {
        let g = globs(&["shop/*", "shop/web:*"]);
        assert_eq!(g.best_match("shop/web:1.4"), Some("/shop/web:*".len()));
        assert_eq!(g.best_match("shop/db:2"), Some("/shop/*".len()));
        assert_eq!(g.best_match("shop/team/web:1"), None);
        assert!(globs(&["**"]).allows("a/b/c:1"));
        assert!(globs(&[]).allows("anything"));
        assert!(ImageGlobs::parse(&["/abs".into()]).is_err());
        assert!(ImageGlobs::parse(&["shop/[ab]".into()]).is_err());
    }
}
