//! One-time codes: six digits a person reads back to a voice or chat agent. Only a hash is
//! stored, bound to the instruction; the cost it approves and its expiry are stored beside it.

use sha2::{Digest, Sha256};

/// A fresh code of six random digits.
pub fn new_code() -> String {
    // Rejection sampling over random 32-bit numbers keeps every code equally likely.
    const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let number = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if number < LIMIT {
            return format!("{:06}", number % 1_000_000);
        }
    }
}

/// 244 random bits (two v4 UUIDs) as hex: a confirmation page's id or its form's token.
pub fn random_token() -> String {
    let mut token = String::with_capacity(64);
    for _ in 0..2 {
        token.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    token
}

/// What is stored of `code`: tied to the instruction, so a code shown for one instruction is
/// worth nothing for another.
pub fn hash(instruction_id: &str, code: &str) -> String {
    let digest = Sha256::digest(format!("kroma-code:{instruction_id}:{code}").as_bytes());
    format!("{digest:x}")
}

/// A code as a person may say it back: digits, with spaces or dashes between groups.
pub fn normalize(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Compares two hashes without stopping at the first difference.
pub fn same_hash(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.len() > 45, "{codes:?}");
        for code in &codes {
            assert_eq!(normalize(code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn a_code_is_bound_to_its_instruction() {
        assert_ne!(hash("a", "123456"), hash("b", "123456"));
        assert!(same_hash(&hash("a", "123456"), &hash("a", "123456")));
        assert!(!same_hash(&hash("a", "123456"), &hash("a", "123457")));
    }

    #[test]
    fn what_a_person_may_say_back() {
        assert_eq!(normalize("482 017").as_deref(), Some("482017"));
        assert_eq!(normalize("482-017").as_deref(), Some("482017"));
        for wrong in ["", "48201", "4820171", "48201a", "４８２０１７", "482\n017"] {
            assert_eq!(normalize(wrong), None, "{wrong:?}");
        }
    }
}
