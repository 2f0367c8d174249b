//! Attacks on the provider, end to end: the devnet over its ports, the real control plane and the
//! real provider process. Every test tries an attack and fails if the attack works.

mod gateway;
