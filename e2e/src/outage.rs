//! Outages on demand: a TCP proxy in front of a service (the devnet's RPC or gRPC, the API
//! server) that a test cuts and restores. Cut, it closes every connection it carries and every
//! new one as it arrives, as a service that went away would; restored, it carries them again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

pub struct CuttableProxy {
    /// Where clients connect instead of the target.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: JoinHandle<()>,
}

impl CuttableProxy {
    /// A proxy on a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let accepting = tokio::spawn({
            let (cut, connections) = (cut.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut open = connections.lock().unwrap_or_else(|e| e.into_inner());
                    open.retain(|c| !c.is_finished());
                    open.push(task.abort_handle());
                }
            }
        });
        Ok(Self {
            addr,
            cut,
            connections,
            accepting,
        })
    }

    /// A proxy to the host and port of `url` (`http://127.0.0.1:26657`).
    pub async fn to_url(url: &str) -> anyhow::Result<Self> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let hostport = rest.split('/').next().unwrap_or(rest);
        let target: SocketAddr = tokio::net::lookup_host(hostport)
            .await
            .with_context(|| format!("resolving {hostport}"))?
            .next()
            .with_context(|| format!("no address for {hostport}"))?;
        Self::start(target).await
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The service is gone: open connections close, new ones are closed at once.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            connection.abort();
        }
    }

    /// The service is back.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// A copy of the kubeconfig at `kubeconfig` whose server is reached through `proxy`, written to
/// `out`.
pub fn kubeconfig_through(
    kubeconfig: &std::path::Path,
    proxy: &CuttableProxy,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.trim_start().strip_prefix("server: ") {
            Some(url) => {
                replaced += 1;
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}server: {}", proxy.url_for(url.trim()))
            }
            None => line.to_owned(),
        })
        .collect();
    anyhow::ensure!(
        replaced == 1,
        "{} has {replaced} servers",
        kubeconfig.display()
    );
    std::fs::write(out, lines.join("\n") + "\n")?;
    Ok(())
}

/// The API server's URL in the kubeconfig at `kubeconfig`.
pub fn kube_server(kubeconfig: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(kubeconfig)?;
    text.lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("server: ")
                .map(|s| s.trim().to_owned())
        })
        .with_context(|| format!("no server in {}", kubeconfig.display()))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::CuttableProxy;

    async fn echo_once(addr: std::net::SocketAddr) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            stream.read_exact(&mut buf),
        )
        .await
        {
            Ok(Ok(_)) => Some(buf.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_cut_proxy_carries_nothing_and_a_restored_one_carries_again() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = CuttableProxy::start(target).await.unwrap();
        assert_eq!(echo_once(proxy.addr).await.as_deref(), Some(&b"ping"[..]));
        // An open connection is closed by the cut.
        let mut open = TcpStream::connect(proxy.addr).await.unwrap();
        open.write_all(b"ab").await.unwrap();
        let mut two = [0u8; 2];
        open.read_exact(&mut two).await.unwrap();
        proxy.cut();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            open.read_to_end(&mut rest),
        )
        .await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        assert_eq!(echo_once(proxy.addr).await, None);
        proxy.restore();
        assert_eq!(echo_once(proxy.addr).await.as_deref(), Some(&b"ping"[..]));
        assert_eq!(
            proxy.url_for("http://127.0.0.1:1/x"),
            format!("http://{}/x", proxy.addr)
        );
    }
}
