//! The Cosmos gRPC services (tonic): `cosmos.tx.v1beta1.Service` (Simulate, BroadcastTx, GetTx),
//! `cosmos.auth.v1beta1.Query` (Account, AccountInfo, Bech32Prefix) and `cosmos.bank.v1beta1.Query`
//! (Balance, AllBalances, SpendableBalances, SpendableBalanceByDenom). Other methods answer
//! `UNIMPLEMENTED`.

use std::sync::Arc;

use cosmos_sdk_proto::Any;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::base::abci::v1beta1 as abci;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::PageResponse;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as tx;
use prost::{Message, Name};
use tonic::{Request, Response, Status};

use crate::ante::TxResult;
use crate::node::{FoundTx, Node};
use crate::state::{Account, Coin, State};

/// Answers `UNIMPLEMENTED` for methods the devnet does not serve yet, in the shape
/// `#[async_trait]` gives trait methods.
macro_rules! not_served {
    ($($name:ident($req:ty) -> $resp:ty;)*) => {
        $(
            fn $name<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<$req>,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async {
                    Err(Status::unimplemented(concat!(stringify!($name), " is not served by akash-devnet")))
                })
            }
        )*
    };
}

fn any_of<M: Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn proto_coin(c: &Coin) -> ProtoCoin {
    ProtoCoin {
        denom: c.denom.clone(),
        amount: c.amount.to_string(),
    }
}

fn base_account(address: &str, a: &Account) -> auth::BaseAccount {
    auth::BaseAccount {
        address: address.to_owned(),
        pub_key: a
            .pub_key
            .as_ref()
            .map(|k| any_of(&PubKey { key: k.clone() })),
        account_number: a.number,
        sequence: a.sequence,
    }
}

// `Status` is what every tonic handler returns; boxing it here would only be undone at the caller.
#[allow(clippy::result_large_err)]
fn validate_address(address: &str) -> Result<(), Status> {
    crate::bank::validate_address(address, "account").map_err(|e| Status::invalid_argument(e.log))
}

fn tx_response(
    hash: &str,
    height: u64,
    r: &TxResult,
    tx: Option<Any>,
    timestamp: String,
) -> abci::TxResponse {
    abci::TxResponse {
        height: i64::try_from(height).unwrap_or(i64::MAX),
        txhash: hash.to_owned(),
        codespace: r.codespace.clone(),
        code: r.code,
        data: data_encoding::HEXUPPER.encode(&r.data),
        raw_log: r.log.clone(),
        logs: Vec::new(),
        info: String::new(),
        gas_wanted: i64::try_from(r.gas_wanted).unwrap_or(i64::MAX),
        gas_used: i64::try_from(r.gas_used).unwrap_or(i64::MAX),
        tx,
        timestamp,
        events: r
            .events
            .iter()
            .map(crate::events::Event::to_proto)
            .collect(),
    }
}

/// Decodes raw transaction bytes into the `Tx` that `GetTx` returns.
fn decode_tx(raw: &[u8]) -> Option<tx::Tx> {
    let r = tx::TxRaw::decode(raw).ok()?;
    Some(tx::Tx {
        body: Some(tx::TxBody::decode(r.body_bytes.as_slice()).ok()?),
        auth_info: Some(tx::AuthInfo::decode(r.auth_info_bytes.as_slice()).ok()?),
        signatures: r.signatures,
    })
}

/// The three services over one node.
#[derive(Clone)]
pub struct Services {
    node: Arc<Node>,
}

impl Services {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.node.with_state(f)
    }
}

#[tonic::async_trait]
impl tx::service_server::Service for Services {
    async fn simulate(
        &self,
        request: Request<tx::SimulateRequest>,
    ) -> Result<Response<tx::SimulateResponse>, Status> {
        let req = request.into_inner();
        #[allow(deprecated)]
        let raw = if !req.tx_bytes.is_empty() {
            req.tx_bytes
        } else if let Some(t) = req.tx {
            tx::TxRaw {
                body_bytes: t.body.map(|b| b.encode_to_vec()).unwrap_or_default(),
                auth_info_bytes: t.auth_info.map(|a| a.encode_to_vec()).unwrap_or_default(),
                signatures: t.signatures,
            }
            .encode_to_vec()
        } else {
            return Err(Status::invalid_argument("empty txBytes is not allowed"));
        };
        let r = self.node.simulate(&raw);
        if !r.is_ok() {
            return Err(Status::unknown(format!(
                "{} With gas wanted: '{}' and gas used: '{}' ",
                r.log, r.gas_wanted, r.gas_used
            )));
        }
        let msg_responses = abci::TxMsgData::decode(r.data.as_slice())
            .map(|d| d.msg_responses)
            .unwrap_or_default();
        #[allow(deprecated)]
        let result = abci::Result {
            data: Vec::new(),
            log: r.log.clone(),
            events: r
                .events
                .iter()
                .map(crate::events::Event::to_proto)
                .collect(),
            msg_responses,
        };
        Ok(Response::new(tx::SimulateResponse {
            gas_info: Some(abci::GasInfo {
                gas_wanted: r.gas_wanted,
                gas_used: r.gas_used,
            }),
            result: Some(result),
        }))
    }

    async fn get_tx(
        &self,
        request: Request<tx::GetTxRequest>,
    ) -> Result<Response<tx::GetTxResponse>, Status> {
        let hash = request.into_inner().hash;
        if hash.is_empty() {
            return Err(Status::invalid_argument("request cannot be nil"));
        }
        let found: FoundTx = self
            .node
            .tx(&hash)
            .map_err(|e| Status::internal(e.to_string()))?
            .ok_or_else(|| Status::not_found(format!("tx not found: {hash}")))?;
        let decoded = decode_tx(&found.raw);
        let any = decoded.as_ref().map(any_of);
        Ok(Response::new(tx::GetTxResponse {
            tx: decoded,
            tx_response: Some(tx_response(
                &found.hash,
                found.location.height,
                &found.result,
                any,
                found.block_time,
            )),
        }))
    }

    async fn broadcast_tx(
        &self,
        request: Request<tx::BroadcastTxRequest>,
    ) -> Result<Response<tx::BroadcastTxResponse>, Status> {
        let req = request.into_inner();
        if req.tx_bytes.is_empty() {
            return Err(Status::invalid_argument("invalid empty tx"));
        }
        if req.mode == tx::BroadcastMode::Unspecified as i32 {
            return Err(Status::invalid_argument(
                "supported BroadcastMode values are SYNC and ASYNC",
            ));
        }
        let response = match self.node.check_tx(req.tx_bytes.clone()) {
            Ok((hash, r)) => tx_response(&hash, 0, &r, None, String::new()),
            // CometBFT's cache error, as the SDK maps it: ErrTxInMempoolCache.
            Err(_) => abci::TxResponse {
                txhash: crate::node::tx_hash(&req.tx_bytes),
                codespace: "sdk".into(),
                code: 19,
                raw_log: "tx already in mempool".into(),
                ..Default::default()
            },
        };
        Ok(Response::new(tx::BroadcastTxResponse {
            tx_response: Some(response),
        }))
    }

    not_served! {
        get_txs_event(tx::GetTxsEventRequest) -> tx::GetTxsEventResponse;
        get_block_with_txs(tx::GetBlockWithTxsRequest) -> tx::GetBlockWithTxsResponse;
        tx_decode(tx::TxDecodeRequest) -> tx::TxDecodeResponse;
        tx_encode(tx::TxEncodeRequest) -> tx::TxEncodeResponse;
        tx_encode_amino(tx::TxEncodeAminoRequest) -> tx::TxEncodeAminoResponse;
        tx_decode_amino(tx::TxDecodeAminoRequest) -> tx::TxDecodeAminoResponse;
    }
}

#[tonic::async_trait]
impl auth::query_server::Query for Services {
    async fn account(
        &self,
        request: Request<auth::QueryAccountRequest>,
    ) -> Result<Response<auth::QueryAccountResponse>, Status> {
        let address = request.into_inner().address;
        validate_address(&address)?;
        let account = self
            .state(|s| s.accounts.get(&address).map(|a| base_account(&address, a)))
            .ok_or_else(|| Status::not_found(format!("account {address} not found")))?;
        Ok(Response::new(auth::QueryAccountResponse {
            account: Some(any_of(&account)),
        }))
    }

    async fn account_info(
        &self,
        request: Request<auth::QueryAccountInfoRequest>,
    ) -> Result<Response<auth::QueryAccountInfoResponse>, Status> {
        let address = request.into_inner().address;
        validate_address(&address)?;
        let info = self
            .state(|s| s.accounts.get(&address).map(|a| base_account(&address, a)))
            .ok_or_else(|| Status::not_found(format!("account {address} not found")))?;
        Ok(Response::new(auth::QueryAccountInfoResponse {
            info: Some(info),
        }))
    }

    async fn bech32_prefix(
        &self,
        _request: Request<auth::Bech32PrefixRequest>,
    ) -> Result<Response<auth::Bech32PrefixResponse>, Status> {
        Ok(Response::new(auth::Bech32PrefixResponse {
            bech32_prefix: crate::BECH32_PREFIX.to_owned(),
        }))
    }

    not_served! {
        accounts(auth::QueryAccountsRequest) -> auth::QueryAccountsResponse;
        account_address_by_id(auth::QueryAccountAddressByIdRequest) -> auth::QueryAccountAddressByIdResponse;
        params(auth::QueryParamsRequest) -> auth::QueryParamsResponse;
        module_accounts(auth::QueryModuleAccountsRequest) -> auth::QueryModuleAccountsResponse;
        module_account_by_name(auth::QueryModuleAccountByNameRequest) -> auth::QueryModuleAccountByNameResponse;
        address_bytes_to_string(auth::AddressBytesToStringRequest) -> auth::AddressBytesToStringResponse;
        address_string_to_bytes(auth::AddressStringToBytesRequest) -> auth::AddressStringToBytesResponse;
    }
}

fn balances_page(balances: Vec<Coin>) -> (Vec<ProtoCoin>, Option<PageResponse>) {
    let total = balances.len() as u64;
    (
        balances.iter().map(proto_coin).collect(),
        Some(PageResponse {
            next_key: Vec::new(),
            total,
        }),
    )
}

#[tonic::async_trait]
impl bank::query_server::Query for Services {
    async fn balance(
        &self,
        request: Request<bank::QueryBalanceRequest>,
    ) -> Result<Response<bank::QueryBalanceResponse>, Status> {
        let req = request.into_inner();
        validate_address(&req.address)?;
        if req.denom.is_empty() {
            return Err(Status::invalid_argument("invalid denom"));
        }
        let amount = self.state(|s| s.balance(&req.address, &req.denom));
        Ok(Response::new(bank::QueryBalanceResponse {
            balance: Some(proto_coin(&Coin::new(amount, &req.denom))),
        }))
    }

    async fn all_balances(
        &self,
        request: Request<bank::QueryAllBalancesRequest>,
    ) -> Result<Response<bank::QueryAllBalancesResponse>, Status> {
        let address = request.into_inner().address;
        validate_address(&address)?;
        let (balances, pagination) = balances_page(self.state(|s| s.all_balances(&address)));
        Ok(Response::new(bank::QueryAllBalancesResponse {
            balances,
            pagination,
        }))
    }

    async fn spendable_balances(
        &self,
        request: Request<bank::QuerySpendableBalancesRequest>,
    ) -> Result<Response<bank::QuerySpendableBalancesResponse>, Status> {
        let address = request.into_inner().address;
        validate_address(&address)?;
        let (balances, pagination) = balances_page(self.state(|s| s.all_balances(&address)));
        Ok(Response::new(bank::QuerySpendableBalancesResponse {
            balances,
            pagination,
        }))
    }

    async fn spendable_balance_by_denom(
        &self,
        request: Request<bank::QuerySpendableBalanceByDenomRequest>,
    ) -> Result<Response<bank::QuerySpendableBalanceByDenomResponse>, Status> {
        let req = request.into_inner();
        validate_address(&req.address)?;
        let amount = self.state(|s| s.balance(&req.address, &req.denom));
        Ok(Response::new(bank::QuerySpendableBalanceByDenomResponse {
            balance: Some(proto_coin(&Coin::new(amount, &req.denom))),
        }))
    }

    not_served! {
        total_supply(bank::QueryTotalSupplyRequest) -> bank::QueryTotalSupplyResponse;
        supply_of(bank::QuerySupplyOfRequest) -> bank::QuerySupplyOfResponse;
        params(bank::QueryParamsRequest) -> bank::QueryParamsResponse;
        denom_metadata(bank::QueryDenomMetadataRequest) -> bank::QueryDenomMetadataResponse;
        denom_metadata_by_query_string(bank::QueryDenomMetadataByQueryStringRequest) -> bank::QueryDenomMetadataByQueryStringResponse;
        denoms_metadata(bank::QueryDenomsMetadataRequest) -> bank::QueryDenomsMetadataResponse;
        denom_owners(bank::QueryDenomOwnersRequest) -> bank::QueryDenomOwnersResponse;
        denom_owners_by_query(bank::QueryDenomOwnersByQueryRequest) -> bank::QueryDenomOwnersByQueryResponse;
        send_enabled(bank::QuerySendEnabledRequest) -> bank::QuerySendEnabledResponse;
    }
}
