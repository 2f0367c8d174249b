//! What every websocket stream of the gateway (logs, events, shell) does the same way: pings an
//! idle stream, notices the tenant leaving, ends when the provider ends it ([`StreamEnd`]), and
//! closes with a handshake so clients see a clean end rather than a cut connection.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{BoxStream, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};

use super::stream_end::StreamEnd;

/// Between pings, so that proxies keep an idle stream open and a dead peer is noticed.
pub(super) const PING_EVERY: Duration = Duration::from_secs(10);

pub(super) type Sink = SplitSink<WebSocket, Message>;
pub(super) type Incoming = SplitStream<WebSocket>;

/// A close message.
pub(super) fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// Sends each text of `feed` as a message until it ends (then a normal close), the tenant
/// leaves, or `end` says so (then its close code); then closes.
pub(super) async fn send_texts(
    mut sink: Sink,
    mut incoming: Incoming,
    mut feed: BoxStream<'_, String>,
    mut end: StreamEnd,
) {
    let ended = end.wait();
    tokio::pin!(ended);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            text = feed.next() => match text {
                Some(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = sink.send(close(1000, "")).await;
                    break;
                }
            },
            from_tenant = incoming.next() => match from_tenant {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            reason = &mut ended => {
                let (code, text) = reason.close_frame();
                let _ = sink.send(close(code, text)).await;
                break;
            }
        }
    }
    // Whatever produces the feed stops now.
    drop(feed);
    finish(sink, incoming).await;
}

/// The closing handshake after our Close: the tenant's answer (briefly), then the connection
/// ends with its TLS close.
pub(super) async fn finish(sink: Sink, mut incoming: Incoming) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    if let Ok(mut socket) = sink.reunite(incoming) {
        let _ = socket.close().await;
    }
}
