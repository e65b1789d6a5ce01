//! Reports for people: sparklines and bars drawn with Unicode blocks, for
//! psql output and any client that shows text.

const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// One block per value, from `▁` (the smallest) to `█` (the largest); a
/// missing or non-finite value is a space (a gap); all values equal draw a
/// flat `▄` line. Empty input gives an empty string.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let finite = values.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    values
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => {
                if hi > lo {
                    let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                    BLOCKS[i.min(7)]
                } else {
                    BLOCKS[3]
                }
            }
            _ => ' ',
        })
        .collect()
}

/// A horizontal bar `width` characters wide at most, of `value` against
/// `max`, in eighths of a character; empty for a value of 0 or less, or a
/// missing or non-finite value or maximum.
pub fn bar(value: f64, max: f64, width: usize) -> String {
    if !(value.is_finite() && max.is_finite()) || value <= 0.0 || max <= 0.0 || width == 0 {
        return String::new();
    }
    let eighths = ((value / max).min(1.0) * (width * 8) as f64).round() as usize;
    let mut s: String = std::iter::repeat_n('█', eighths / 8).collect();
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8 - 1]);
    }
    if s.is_empty() {
        s.push(EIGHTHS[0]); // a positive value is never invisible
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[]), "");
        assert_eq!(
            sparkline(&[
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(4.0),
                Some(5.0),
                Some(6.0),
                Some(7.0),
                Some(8.0)
            ]),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(
            sparkline(&[Some(0.0), None, Some(10.0), Some(f64::NAN), Some(5.0)]),
            "▁ █ ▅"
        );
        assert_eq!(sparkline(&[Some(3.0), Some(3.0)]), "▄▄");
        assert_eq!(sparkline(&[None, None]), "  ");
    }

    #[test]
    fn bars() {
        assert_eq!(bar(10.0, 10.0, 4), "████");
        assert_eq!(bar(5.0, 10.0, 4), "██");
        assert_eq!(bar(1.0, 10.0, 4), "▍"); // 3.2 eighths -> 3
        assert_eq!(bar(0.001, 10.0, 4), "▏");
        assert_eq!(bar(0.0, 10.0, 4), "");
        assert_eq!(bar(20.0, 10.0, 2), "██");
        assert_eq!(bar(f64::NAN, 10.0, 2), "");
    }

    proptest! {
        #[test]
        fn one_char_per_value_and_extremes_drawn(v in proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..40)) {
            let s = sparkline(&v);
            prop_assert_eq!(s.chars().count(), v.len());
            let finite: Vec<f64> = v.iter().flatten().copied().collect();
            if finite.len() >= 2 && finite.iter().any(|x| *x != finite[0]) {
                prop_assert!(s.contains('▁') && s.contains('█'));
            }
        }

        #[test]
        fn bars_never_exceed_the_width(value in -10.0f64..100.0, max in 0.1f64..50.0, width in 1usize..20) {
            prop_assert!(bar(value, max, width).chars().count() <= width);
        }
    }
}
