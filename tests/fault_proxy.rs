//! A TCP proxy between a daemon under test and the API server that can pass traffic, black-hole
//! it (connections stay open, nothing is forwarded: a hung connection or a partitioned network)
//! or reset it (every connection is closed and new ones are refused: a server that is down).
//! TLS passes through untouched, so the daemon talks to the real API server through it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Keep every connection open and forward nothing, in either direction.
    BlackHole,
    /// Close every connection and refuse new ones.
    Reset,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    connections: Arc<Connections>,
    task: JoinHandle<()>,
}

/// Open connections now, and the most there were at once.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts one open connection while it lives.
struct Open(Arc<Connections>);

impl Open {
    fn new(connections: &Arc<Connections>) -> Open {
        let open = connections.open.fetch_add(1, Ordering::SeqCst) + 1;
        connections.peak.fetch_max(open, Ordering::SeqCst);
        Open(connections.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let (mode, _) = watch::channel(Mode::Pass);
        let modes = mode.clone();
        let connections = Arc::new(Connections::default());
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = modes.subscribe();
                if *mode.borrow() == Mode::Reset {
                    drop(client);
                    continue;
                }
                let open = Open::new(&counted);
                tokio::spawn(async move {
                    connection(client, upstream, mode).await;
                    drop(open);
                });
            }
        });
        FaultProxy {
            address,
            mode,
            connections,
            task,
        }
    }

    /// Switch what the proxy does, for open connections too.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// The most connections that were open at once. The kube client speaks HTTP/1.1, one
    /// request at a time per connection, so this bounds the requests in flight.
    pub fn peak_connections(&self) -> usize {
        self.connections.peak.load(Ordering::SeqCst)
    }

    /// The address clients connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A copy of the kubeconfig at `kubeconfig` whose server is this proxy, written to
    /// `directory`; the API server's certificate names 127.0.0.1, so TLS still verifies.
    pub fn kubeconfig(&self, kubeconfig: &Path, directory: &Path) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig).expect("read the test kubeconfig");
        let start = text
            .find("https://127.0.0.1:")
            .expect("the test kubeconfig names a loopback server")
            + "https://".len();
        let end = start
            + text[start..]
                .find(|c: char| c == '"' || c.is_whitespace())
                .expect("the server address ends");
        let rewritten = format!("{}{}{}", &text[..start], self.address, &text[end..]);
        let path = directory.join(format!("kubeconfig-proxy-{}", self.address.port()));
        std::fs::write(&path, rewritten).expect("write the proxy kubeconfig");
        path
    }
}

/// The address of the API server in a kubeconfig written by `tests/cluster/up`.
pub fn upstream_of(kubeconfig: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).expect("read the test kubeconfig");
    let start = text
        .find("https://127.0.0.1:")
        .expect("the test kubeconfig names a loopback server")
        + "https://".len();
    let address: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    address.parse().expect("a socket address")
}

async fn connection(client: TcpStream, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, mode.clone());
    let down = pump(server_read, client_write, mode);
    // When either direction ends (closed, or reset), both sockets are dropped.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            () = reset(&mut mode) => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held while black-holed; delivered if traffic passes again, dropped on a reset.
        match mode.wait_for(|m| *m != Mode::BlackHole).await {
            Ok(m) if *m == Mode::Pass => {}
            _ => return,
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Completes when the mode becomes [`Mode::Reset`] (or the proxy is gone).
async fn reset(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Reset).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> Option<Vec<u8>> {
        stream.write_all(text).await.ok()?;
        let mut answer = vec![0u8; text.len()];
        match tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut answer)).await
        {
            Ok(Ok(_)) => Some(answer),
            _ => None,
        }
    }

    #[tokio::test]
    async fn passes_holds_and_resets() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(
            round_trip(&mut stream, b"one").await.as_deref(),
            Some(&b"one"[..])
        );

        proxy.set(Mode::BlackHole);
        assert_eq!(round_trip(&mut stream, b"two").await, None, "held");
        proxy.set(Mode::Pass);
        let mut late = vec![0u8; 3];
        stream.read_exact(&mut late).await.unwrap();
        assert_eq!(late, b"two", "delivered once traffic passes again");

        proxy.set(Mode::Reset);
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "an open connection is closed on reset");
        let mut refused = TcpStream::connect(proxy.address()).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), refused.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a new connection is closed at once"
        );

        proxy.set(Mode::Pass);
        let mut again = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(
            round_trip(&mut again, b"three").await.as_deref(),
            Some(&b"three"[..])
        );
        let mut other = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(
            round_trip(&mut other, b"four").await.as_deref(),
            Some(&b"four"[..])
        );
        assert_eq!(proxy.peak_connections(), 2, "two open at once at most");
    }

    #[test]
    fn the_kubeconfig_is_rewritten_to_the_proxy() {
        let directory = std::env::temp_dir().join(format!("fault-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let original = directory.join("kubeconfig");
        std::fs::write(
            &original,
            "clusters:\n- name: test\n  cluster: {server: \"https://127.0.0.1:6443\", certificate-authority: \"/ca\"}\n",
        )
        .unwrap();
        assert_eq!(upstream_of(&original), "127.0.0.1:6443".parse().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let proxy = runtime.block_on(FaultProxy::start("127.0.0.1:6443".parse().unwrap()));
        let rewritten = std::fs::read_to_string(proxy.kubeconfig(&original, &directory)).unwrap();
        assert!(
            rewritten.contains(&format!("\"https://{}\"", proxy.address())),
            "{rewritten}"
        );
        assert!(rewritten.contains("certificate-authority: \"/ca\""));
        drop(proxy);
        let _ = std::fs::remove_dir_all(directory);
    }
}
