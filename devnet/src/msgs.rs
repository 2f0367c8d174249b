//! The messages the devnet knows, decoded from their `Any`, with their signer and handler.

use chain_client::akash::audit::v1::{
    MsgDeleteProviderAttributes, MsgDeleteProviderAttributesResponse, MsgSignProviderAttributes,
    MsgSignProviderAttributesResponse,
};
use chain_client::akash::cert::v1::{
    MsgCreateCertificate, MsgCreateCertificateResponse, MsgRevokeCertificate,
    MsgRevokeCertificateResponse,
};
use chain_client::akash::deployment::v1beta4::{
    MsgCloseDeployment, MsgCloseDeploymentResponse, MsgCloseGroup, MsgCloseGroupResponse,
    MsgPauseGroup, MsgPauseGroupResponse, MsgStartGroup, MsgStartGroupResponse,
    MsgUpdateDeployment, MsgUpdateDeploymentResponse,
};
use chain_client::akash::deployment::v1beta4::{MsgCreateDeployment, MsgCreateDeploymentResponse};
use chain_client::akash::market::v1beta5::{
    MsgCloseBid, MsgCloseBidResponse, MsgCloseLease, MsgCloseLeaseResponse, MsgCreateBid,
    MsgCreateBidResponse, MsgCreateLease, MsgCreateLeaseResponse, MsgWithdrawLease,
    MsgWithdrawLeaseResponse,
};
use chain_client::akash::provider::v1beta4::{
    MsgCreateProvider, MsgCreateProviderResponse, MsgUpdateProvider, MsgUpdateProviderResponse,
};
use cosmos_sdk_proto::Any;
use cosmos_sdk_proto::cosmos::bank::v1beta1::{MsgSend, MsgSendResponse};
use prost::{Message, Name};

use crate::ante::SdkError;
use crate::events::Event;
use crate::state::State;

/// A known message.
#[derive(Debug, Clone)]
pub enum Msg {
    BankSend(MsgSend),
    CreateDeployment(MsgCreateDeployment),
    CreateProvider(MsgCreateProvider),
    CreateBid(MsgCreateBid),
    CreateLease(MsgCreateLease),
    CloseBid(MsgCloseBid),
    CloseLease(MsgCloseLease),
    UpdateDeployment(MsgUpdateDeployment),
    WithdrawLease(MsgWithdrawLease),
    CloseDeployment(MsgCloseDeployment),
    CloseGroup(MsgCloseGroup),
    PauseGroup(MsgPauseGroup),
    StartGroup(MsgStartGroup),
    UpdateProvider(MsgUpdateProvider),
    CreateCertificate(MsgCreateCertificate),
    RevokeCertificate(MsgRevokeCertificate),
    SignProviderAttributes(MsgSignProviderAttributes),
    DeleteProviderAttributes(MsgDeleteProviderAttributes),
}

fn any_of<M: Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

impl Msg {
    pub fn decode(any: &Any) -> Result<Self, SdkError> {
        let bad = |e: prost::DecodeError| SdkError::tx_decode(e.to_string());
        if any.type_url == MsgSend::type_url() {
            return Ok(Self::BankSend(
                MsgSend::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCreateDeployment::type_url() {
            return Ok(Self::CreateDeployment(
                MsgCreateDeployment::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCreateBid::type_url() {
            return Ok(Self::CreateBid(
                MsgCreateBid::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCreateLease::type_url() {
            return Ok(Self::CreateLease(
                MsgCreateLease::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgWithdrawLease::type_url() {
            return Ok(Self::WithdrawLease(
                MsgWithdrawLease::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCloseLease::type_url() {
            return Ok(Self::CloseLease(
                MsgCloseLease::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgUpdateDeployment::type_url() {
            return Ok(Self::UpdateDeployment(
                MsgUpdateDeployment::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCloseBid::type_url() {
            return Ok(Self::CloseBid(
                MsgCloseBid::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCloseDeployment::type_url() {
            return Ok(Self::CloseDeployment(
                MsgCloseDeployment::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCloseGroup::type_url() {
            return Ok(Self::CloseGroup(
                MsgCloseGroup::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgPauseGroup::type_url() {
            return Ok(Self::PauseGroup(
                MsgPauseGroup::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgStartGroup::type_url() {
            return Ok(Self::StartGroup(
                MsgStartGroup::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCreateProvider::type_url() {
            return Ok(Self::CreateProvider(
                MsgCreateProvider::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgUpdateProvider::type_url() {
            return Ok(Self::UpdateProvider(
                MsgUpdateProvider::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgCreateCertificate::type_url() {
            return Ok(Self::CreateCertificate(
                MsgCreateCertificate::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgRevokeCertificate::type_url() {
            return Ok(Self::RevokeCertificate(
                MsgRevokeCertificate::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgSignProviderAttributes::type_url() {
            return Ok(Self::SignProviderAttributes(
                MsgSignProviderAttributes::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        if any.type_url == MsgDeleteProviderAttributes::type_url() {
            return Ok(Self::DeleteProviderAttributes(
                MsgDeleteProviderAttributes::decode(any.value.as_slice()).map_err(bad)?,
            ));
        }
        Err(SdkError::tx_decode(format!(
            "unable to resolve type URL {}",
            any.type_url
        )))
    }

    /// The address that must sign the message.
    pub fn signer(&self) -> &str {
        match self {
            Self::BankSend(m) => &m.from_address,
            Self::CreateDeployment(m) => crate::deployment::signer(m),
            Self::CreateProvider(m) => &m.owner,
            Self::CreateBid(m) => crate::market::bid_signer(m),
            Self::CreateLease(m) => crate::lease::signer(m),
            Self::CloseBid(m) => crate::close::close_bid_signer(m),
            Self::CloseLease(m) => crate::close::close_lease_signer(m),
            Self::UpdateDeployment(m) => crate::deployment::update_signer(m),
            Self::WithdrawLease(m) => crate::escrow::withdraw_signer(m),
            Self::CloseDeployment(m) => crate::close::close_deployment_signer(m),
            Self::CloseGroup(m) => crate::group::close_signer(m),
            Self::PauseGroup(m) => crate::group::pause_signer(m),
            Self::StartGroup(m) => crate::group::start_signer(m),
            Self::UpdateProvider(m) => &m.owner,
            Self::CreateCertificate(m) => &m.owner,
            Self::RevokeCertificate(m) => crate::cert::revoke_signer(m),
            Self::SignProviderAttributes(m) => &m.auditor,
            Self::DeleteProviderAttributes(m) => &m.auditor,
        }
    }

    /// Runs the message in the block at `state.height + 1`; returns its events and its response
    /// (as an `Any`).
    pub fn execute(&self, state: &mut State, index: usize) -> Result<(Vec<Event>, Any), SdkError> {
        let height = state.height + 1;
        match self {
            Self::CreateBid(m) => Ok((
                crate::market::create_bid(state, m, index, height)?,
                any_of(&MsgCreateBidResponse {}),
            )),
            Self::CreateLease(m) => Ok((
                crate::lease::create_lease(state, m, index, height)?,
                any_of(&MsgCreateLeaseResponse {}),
            )),
            Self::WithdrawLease(m) => Ok((
                crate::escrow::withdraw_lease(state, m, index, height)?,
                any_of(&MsgWithdrawLeaseResponse {}),
            )),
            Self::CloseLease(m) => Ok((
                crate::close::close_lease(state, m, index, height)?,
                any_of(&MsgCloseLeaseResponse {}),
            )),
            Self::UpdateDeployment(m) => Ok((
                crate::deployment::update(state, m, index)?,
                any_of(&MsgUpdateDeploymentResponse {}),
            )),
            Self::CloseBid(m) => Ok((
                crate::close::close_bid(state, m, index, height)?,
                any_of(&MsgCloseBidResponse {}),
            )),
            Self::CloseDeployment(m) => Ok((
                crate::close::close_deployment(state, m, index, height)?,
                any_of(&MsgCloseDeploymentResponse {}),
            )),
            Self::CloseGroup(m) => Ok((
                crate::group::close(state, m, index, height)?,
                any_of(&MsgCloseGroupResponse {}),
            )),
            Self::PauseGroup(m) => Ok((
                crate::group::pause(state, m, index, height)?,
                any_of(&MsgPauseGroupResponse {}),
            )),
            Self::StartGroup(m) => Ok((
                crate::group::start(state, m, index, height)?,
                any_of(&MsgStartGroupResponse {}),
            )),
            Self::CreateProvider(m) => Ok((
                crate::provider::create(state, m, index)?,
                any_of(&MsgCreateProviderResponse {}),
            )),
            Self::UpdateProvider(m) => Ok((
                crate::provider::update(state, m, index)?,
                any_of(&MsgUpdateProviderResponse {}),
            )),
            Self::CreateDeployment(m) => Ok((
                crate::deployment::create(state, m, index, height)?,
                any_of(&MsgCreateDeploymentResponse {}),
            )),
            Self::BankSend(m) => Ok((
                crate::bank::send(state, m, index)?,
                any_of(&MsgSendResponse {}),
            )),
            Self::CreateCertificate(m) => Ok((
                crate::cert::create(state, m, index)?,
                any_of(&MsgCreateCertificateResponse {}),
            )),
            Self::RevokeCertificate(m) => Ok((
                crate::cert::revoke(state, m, index)?,
                any_of(&MsgRevokeCertificateResponse {}),
            )),
            Self::SignProviderAttributes(m) => Ok((
                crate::audit::sign(state, m, index)?,
                any_of(&MsgSignProviderAttributesResponse {}),
            )),
            Self::DeleteProviderAttributes(m) => Ok((
                crate::audit::delete(state, m, index)?,
                any_of(&MsgDeleteProviderAttributesResponse {}),
            )),
        }
    }
}
