//! The reference pages, as crate documentation: [`dpop`], [`refusals`] and
//! [`permission_classes`] are rendered from `docs/dpop.md`,
//! `docs/refusals.md` and `docs/permission-classes.md`, the files the README
//! links to, so there is one text to keep current. Their Rust examples are
//! doctests: `cargo test --doc` compiles them and runs their assertions.
//!
//! The pages link to each other and to the crate's items with
//! reference-style links. Each file defines them as paths GitHub can follow
//! (`dpop.md`, `../src/auth/guard.rs`); the macro `page!` puts definitions
//! naming the modules and items before the file's text, and where a label is
//! defined twice the first definition wins (CommonMark), so rustdoc links
//! within the crate's documentation and GitHub within the repository.

/// The link definitions rustdoc uses in every page, one a line: a label
/// for each label the files define. Docs and discovery is not in the crate
/// docs; `routes` builds what it describes.
macro_rules! links {
    () => {
        "\
[dpop]: crate::guide::dpop
[refusals]: crate::guide::refusals
[permission-classes]: crate::guide::permission_classes
[httpauth]: crate::guide::permission_classes#how-we-use-actix-web-httpauth
[discovery]: crate::routes
[require]: crate::auth::require
[Permission]: crate::auth::Permission
[AuthenticatedUser]: crate::auth::AuthenticatedUser
[MaybeAuthenticated]: crate::auth::MaybeAuthenticated
[AuthError]: crate::auth::AuthError
[DpopSettings]: crate::auth::DpopSettings
"
    };
}

/// A doc-only module whose documentation is the Markdown file `$file`, with
/// the definitions of `links!` first.
macro_rules! page {
    ($name:ident, $file:literal) => {
        #[doc = links!()]
        #[doc = include_str!($file)]
        pub mod $name {}
    };
}

page!(dpop, "../docs/dpop.md");
page!(refusals, "../docs/refusals.md");
page!(permission_classes, "../docs/permission-classes.md");

#[cfg(test)]
mod tests {
    /// The labels of the link definitions in `text` (lines `[label]: target`),
    /// lowercased as CommonMark matches them.
    fn labels(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix('[')?.split_once("]: "))
            .map(|(label, _)| label.to_lowercase())
            .collect()
    }

    /// A label a file defines but `links!` does not would send rustdoc to
    /// the file's relative path, which does not exist beside the rendered
    /// page, and rustdoc does not warn about it.
    #[test]
    fn every_label_of_the_pages_has_a_crate_docs_definition() {
        let ours = labels(links!());
        for (file, text) in [
            ("dpop.md", include_str!("../docs/dpop.md")),
            ("refusals.md", include_str!("../docs/refusals.md")),
            (
                "permission-classes.md",
                include_str!("../docs/permission-classes.md"),
            ),
        ] {
            let defined = labels(text);
            assert!(!defined.is_empty(), "{file} defines no links");
            for label in defined {
                assert!(
                    ours.contains(&label),
                    "{file}: [{label}] has no definition in links!"
                );
            }
        }
    }
}
