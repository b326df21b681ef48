//! "Did you mean": the known names nearest to a misspelt one. One place for
//! field names (the schema check), enum values such as a state's `Type`,
//! and state names in transitions.

/// The known names nearest to `key` (case-insensitive edit distance <= 2,
/// and no more than a third of `key`'s letters, so that "B" does not
/// suggest "A"), all of them when several are equally near, in the order of
/// `known`.
pub(crate) fn closest<'a, S: AsRef<str>>(key: &str, known: &'a [S]) -> Vec<&'a S> {
    let key = key.to_lowercase();
    let limit = 2.min(key.chars().count() / 3);
    let scored: Vec<(usize, &S)> = known
        .iter()
        .map(|k| (edit_distance(&key, &k.as_ref().to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .collect();
    let best = scored.iter().map(|(d, _)| *d).min();
    scored
        .into_iter()
        .filter(|(d, _)| Some(*d) == best)
        .map(|(_, k)| k)
        .collect()
}

/// "did you mean 'A'?" or "did you mean 'A' or 'B'?"; `None` without a
/// suggestion.
pub(crate) fn did_you_mean<S: AsRef<str>>(suggestions: &[S]) -> Option<String> {
    if suggestions.is_empty() {
        return None;
    }
    let quoted: Vec<String> = suggestions
        .iter()
        .map(|s| format!("'{}'", s.as_ref()))
        .collect();
    Some(format!("did you mean {}?", quoted.join(" or ")))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(current)
            };
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("resultpath", "resultpath"), 0);
        assert_eq!(edit_distance("resutpath", "resultpath"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
        let known = vec!["ResultPath".to_owned(), "InputPath".to_owned()];
        assert_eq!(closest("ResutPath", &known), vec![&known[0]]);
        assert!(closest("Zebra", &known).is_empty());
        // One letter of two or three is too much to call a typo.
        let short = vec!["A".to_owned(), "Go".to_owned(), "Pay".to_owned()];
        assert!(closest("B", &short).is_empty());
        assert!(closest("Ga", &short).is_empty());
        assert_eq!(closest("pay", &short), vec![&short[2]]);
        assert!(closest("Pya", &short).is_empty());
        let tied = vec![
            "Result".to_owned(),
            "ResultPath".to_owned(),
            "Results".to_owned(),
        ];
        // Equally near names are all offered.
        assert_eq!(closest("Resultz", &tied), vec![&tied[0], &tied[2]]);
    }

    #[test]
    fn did_you_mean_quotes_every_candidate() {
        assert_eq!(
            did_you_mean(&["Succeed"]).as_deref(),
            Some("did you mean 'Succeed'?")
        );
        assert_eq!(
            did_you_mean(&["A", "B"]).as_deref(),
            Some("did you mean 'A' or 'B'?")
        );
        assert_eq!(did_you_mean::<&str>(&[]), None);
    }
}
