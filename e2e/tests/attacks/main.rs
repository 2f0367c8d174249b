//! Attack tests: each tries to break a protection against the real provider, devnet and control
//! plane, and fails if the attack succeeds.

mod gateway;
mod lease;
