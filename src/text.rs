//! Wording shared by the messages the commands print: a count with its noun in agreement.

/// `n` and the noun for it: `one` for 1, `many` otherwise ("1 photo", "2 photos", "0 photos").
pub(crate) fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", for_count(n, one, many))
}

/// `one` for 1 and `many` otherwise: the word that agrees with a count printed apart from it
/// ("is"/"are", "it"/"them").
pub(crate) fn for_count<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(counted(1, "copy", "copies"), "1 copy");
        assert_eq!(counted(0, "copy", "copies"), "0 copies");
        assert_eq!(counted(2, "file was", "files were"), "2 files were");
    }
}
