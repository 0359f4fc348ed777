//! The sealed `requestState` of a 2026-07-28 input round: when `submit_instruction` asks the
//! host to show the confirmation page (or the plan), it answers `InputRequiredResult` with a
//! state naming the instruction, and the client's retry brings it back. The state is sealed with
//! rmcp's `RequestStateCodec` (HMAC-SHA256; readable, not secret) under a key of 32 random bytes
//! made when `kroma-mcp` starts and never stored, so a state outlives neither the process nor
//! [`ROUND_TTL`]. Its associated data is the declared client name and the call's arguments, so a
//! state is refused for another client or another call; its payload names the instruction and a
//! random nonce, which is used once (a replayed state is refused).
//!
//! Opening a state approves nothing: it only tells `submit_instruction` which instruction to read
//! again instead of proposing a new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::{RequestStateCodec, SealOptions};
use serde::{Deserialize, Serialize};

/// How long a round's state may come back.
pub const ROUND_TTL: Duration = Duration::from_secs(600);

/// The most rounds remembered as used at once; beyond it new rounds are refused until old ones
/// expire (a client cannot make the server forget a used state).
pub const MAX_USED_ROUNDS: usize = 10_000;

/// Seals and opens round states, remembering the ones used.
pub struct Rounds {
    codec: RequestStateCodec,
    used: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RoundState {
    instruction: String,
    nonce: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundError {
    #[error("making the key for confirmation rounds: {0}")]
    Random(String),
    /// Altered, sealed for another client or call, expired, or from an earlier process.
    #[error(
        "this confirmation round is not valid (altered, expired, or for another call); nothing was approved"
    )]
    Invalid,
    #[error("this confirmation round was already answered; nothing was approved")]
    Replayed,
    #[error("too many confirmation rounds at once; try again later")]
    Busy,
}

fn random_hex(n_bytes: usize) -> Result<String, RoundError> {
    let mut bytes = vec![0u8; n_bytes];
    getrandom::fill(&mut bytes).map_err(|err| RoundError::Random(err.to_string()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// What a state is bound to: the client's declared name and the exact arguments of the call.
fn associated_data(client_name: &str, arguments: &[u8]) -> Vec<u8> {
    let mut data = b"kroma-mcp submit_instruction\0".to_vec();
    data.extend_from_slice(client_name.as_bytes());
    data.push(0);
    data.extend_from_slice(arguments);
    data
}

impl Rounds {
    /// Rounds under a fresh random key.
    pub fn new() -> Result<Rounds, RoundError> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|err| RoundError::Random(err.to_string()))?;
        let codec =
            RequestStateCodec::try_new(key).map_err(|err| RoundError::Random(err.to_string()))?;
        Ok(Rounds {
            codec,
            used: Mutex::new(HashMap::new()),
        })
    }

    /// A state naming `instruction`, bound to `client_name` and `arguments`.
    pub fn seal(
        &self,
        instruction: &str,
        client_name: &str,
        arguments: &[u8],
    ) -> Result<String, RoundError> {
        let state = RoundState {
            instruction: instruction.to_owned(),
            nonce: random_hex(16)?,
        };
        let data = associated_data(client_name, arguments);
        self.codec
            .seal_json_with(
                &state,
                &SealOptions::new().associated_data(&data).ttl(ROUND_TTL),
            )
            .map_err(|_| RoundError::Invalid)
    }

    /// The instruction a state names, once: the second time it is [`RoundError::Replayed`].
    pub fn open(
        &self,
        sealed: &str,
        client_name: &str,
        arguments: &[u8],
        now: Instant,
    ) -> Result<String, RoundError> {
        let data = associated_data(client_name, arguments);
        let state: RoundState = self
            .codec
            .open_json_with(sealed, &data)
            .map_err(|_| RoundError::Invalid)?;
        let mut used = self.used.lock().map_err(|_| RoundError::Busy)?;
        used.retain(|_, expires| *expires > now);
        if used.contains_key(&state.nonce) {
            return Err(RoundError::Replayed);
        }
        if used.len() >= MAX_USED_ROUNDS {
            return Err(RoundError::Busy);
        }
        used.insert(state.nonce, now + ROUND_TTL);
        Ok(state.instruction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGS: &[u8] = br#"{"project":"noir"}"#;

    #[test]
    fn a_state_opens_once_for_its_client_and_call_only() {
        let rounds = Rounds::new().expect("rounds");
        let now = Instant::now();
        let sealed = rounds.seal("instr-1", "claude", ARGS).expect("seal");
        assert_eq!(
            rounds.open(&sealed, "other", ARGS, now),
            Err(RoundError::Invalid),
            "another client"
        );
        assert_eq!(
            rounds.open(&sealed, "claude", br#"{"project":"pulp"}"#, now),
            Err(RoundError::Invalid),
            "another call"
        );
        assert_eq!(
            rounds.open(&sealed, "claude", ARGS, now).as_deref(),
            Ok("instr-1")
        );
        assert_eq!(
            rounds.open(&sealed, "claude", ARGS, now),
            Err(RoundError::Replayed)
        );
    }

    #[test]
    fn altered_or_foreign_states_are_refused() {
        let rounds = Rounds::new().expect("rounds");
        let other_process = Rounds::new().expect("rounds");
        let now = Instant::now();
        let sealed = rounds.seal("instr-1", "claude", ARGS).expect("seal");
        let foreign = other_process.seal("instr-1", "claude", ARGS).expect("seal");
        assert_eq!(
            rounds.open(&foreign, "claude", ARGS, now),
            Err(RoundError::Invalid)
        );
        for position in [sealed.len() / 2, sealed.len() - 2] {
            let mut altered = sealed.clone().into_bytes();
            altered[position] = if altered[position] == b'A' {
                b'B'
            } else {
                b'A'
            };
            let altered = String::from_utf8(altered).expect("ascii");
            assert_eq!(
                rounds.open(&altered, "claude", ARGS, now),
                Err(RoundError::Invalid),
                "{position}"
            );
        }
        assert_eq!(
            rounds.open("not a state", "claude", ARGS, now),
            Err(RoundError::Invalid)
        );
    }
}
