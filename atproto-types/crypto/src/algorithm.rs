//! The two key types of atproto.

use std::fmt;
use std::str::FromStr;

use crate::error::KeyError;

/// An atproto signature algorithm, i.e. a curve plus ECDSA with SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// NIST P-256 (secp256r1, prime256v1); JWT `ES256`.
    P256,
    /// secp256k1; JWT `ES256K`.
    K256,
}

impl Algorithm {
    /// Both algorithms.
    pub const ALL: [Algorithm; 2] = [Algorithm::P256, Algorithm::K256];

    /// The JWT (JWA) `alg` name: `ES256` or `ES256K`.
    pub const fn jwt_name(self) -> &'static str {
        match self {
            Algorithm::P256 => "ES256",
            Algorithm::K256 => "ES256K",
        }
    }

    /// The algorithm for a JWT `alg` name (exact, case-sensitive match).
    pub fn from_jwt_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::P256),
            "ES256K" => Some(Algorithm::K256),
            _ => None,
        }
    }

    /// The multicodec code of this algorithm's public keys:
    /// `p256-pub` (0x1200) or `secp256k1-pub` (0xe7).
    pub const fn public_multicodec(self) -> u64 {
        match self {
            Algorithm::P256 => 0x1200,
            Algorithm::K256 => 0xe7,
        }
    }

    /// The multicodec code of this algorithm's private keys:
    /// `p256-priv` (0x1306) or `secp256k1-priv` (0x1301).
    pub const fn private_multicodec(self) -> u64 {
        match self {
            Algorithm::P256 => 0x1306,
            Algorithm::K256 => 0x1301,
        }
    }

    /// The verification method `type` that legacy DID documents used for a
    /// bare multibase key of this algorithm.
    pub const fn legacy_verification_method_type(self) -> &'static str {
        match self {
            Algorithm::P256 => "EcdsaSecp256r1VerificationKey2019",
            Algorithm::K256 => "EcdsaSecp256k1VerificationKey2019",
        }
    }

    /// The algorithm for a legacy verification method `type`.
    pub fn from_legacy_verification_method_type(name: &str) -> Option<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.legacy_verification_method_type() == name)
    }

    /// The curve's common short name: `p256` or `k256`.
    pub const fn curve_name(self) -> &'static str {
        match self {
            Algorithm::P256 => "p256",
            Algorithm::K256 => "k256",
        }
    }

    pub(crate) fn from_public_multicodec(code: u64) -> Option<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.public_multicodec() == code)
    }

    pub(crate) fn from_private_multicodec(code: u64) -> Option<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.private_multicodec() == code)
    }
}

/// Displays the JWT name.
impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwt_name())
    }
}

/// Parses the JWT name (`ES256`, `ES256K`).
impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_jwt_name(s).ok_or_else(|| KeyError::UnknownAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_jwt_name(alg.jwt_name()), Some(alg));
            assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(alg));
            assert_eq!(
                Algorithm::from_legacy_verification_method_type(
                    alg.legacy_verification_method_type()
                ),
                Some(alg)
            );
            assert_eq!(
                Algorithm::from_public_multicodec(alg.public_multicodec()),
                Some(alg)
            );
            assert_eq!(
                Algorithm::from_private_multicodec(alg.private_multicodec()),
                Some(alg)
            );
        }
        assert_eq!(Algorithm::P256.jwt_name(), "ES256");
        assert_eq!(Algorithm::K256.jwt_name(), "ES256K");
        assert!("es256k".parse::<Algorithm>().is_err());
        assert!("EdDSA".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::from_public_multicodec(0xed), None);
    }
}
