//! Address normalisation (地址归一), so that the same place written two ways compares
//! equal.
//!
//! An address is compared by its *key*:
//!
//! 1. full-width ASCII (`１２号`, `Ａ栋`) becomes half-width, Latin letters lower case
//!    (see [`fold`](crate::rules::fold));
//! 2. every space is removed: ASCII, the ideographic space `　` and any other white
//!    space (`中山路 12 号` = `中山路12号`);
//! 3. punctuation is removed, ASCII and CJK alike (`，。、；：（）【】《》“”‘’·—…` and
//!    the rest of the CJK symbols and full-width forms), except `#` and `-`, which carry
//!    meaning in addresses (`3#楼`, `12-3号`);
//! 4. everything else is kept as written: `号`, `栋`, `幢`, `单元`, `室` are not
//!    rewritten into one another and Chinese numerals are not turned into digits, so
//!    `3号楼` and `3栋` stay different places.
//!
//! An address that is empty after this has no key and is not compared.

use crate::rules::{fold, is_punctuation};

/// The comparison key of `address`, or `None` when nothing is left of it.
pub fn key(address: &str) -> Option<String> {
    let key: String = fold(address)
        .chars()
        .filter(|c| !c.is_whitespace() && (!is_punctuation(*c) || matches!(c, '#' | '-')))
        .collect();
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn spaces_widths_and_punctuation_do_not_matter() {
        let k = key("中山路12号").unwrap();
        for same in ["  中山路12号 ", "中山路 12 号", "中山路　１２号。", "（中山路）12号", "中山路,12号!"] {
            assert_eq!(key(same).as_deref(), Some(k.as_str()), "{same}");
        }
        assert_eq!(key("幸福里小区３#楼").as_deref(), Some("幸福里小区3#楼"));
        assert_eq!(key("长江路12-3号Ａ座").as_deref(), Some("长江路12-3号a座"));
    }

    #[test]
    fn building_and_number_forms_are_kept() {
        assert_ne!(key("幸福里3号楼"), key("幸福里3栋"));
        assert_ne!(key("中山路十二号"), key("中山路12号"));
        assert_eq!(key(" 　，。 "), None);
    }
}
