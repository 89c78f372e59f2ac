//! Opening connections: straight to the target, to a forwarding proxy, or through a `CONNECT`
//! tunnel (hyper-util's [`Tunnel`]).

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Where the TCP connection of a request goes.
#[derive(Clone, Debug)]
pub(super) enum Connector {
    /// To the target.
    Direct(HttpConnector),
    /// To the proxy, for plain http: the client then writes the full URL in the request line.
    Forward { http: HttpConnector, proxy: Uri },
    /// To the proxy, then `CONNECT` to the target; TLS runs inside the tunnel.
    Tunnel(Tunnel<HttpConnector>),
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Connector::Direct(http) | Connector::Forward { http, .. } => {
                http.poll_ready(cx).map_err(Into::into)
            }
            Connector::Tunnel(tunnel) => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Connector::Direct(http) => {
                let connecting = http.call(dst);
                Box::pin(async move {
                    Ok(Conn {
                        io: connecting.await?,
                        forwarded: false,
                    })
                })
            }
            Connector::Forward { http, proxy } => {
                let connecting = http.call(proxy.clone());
                Box::pin(async move {
                    Ok(Conn {
                        io: connecting.await?,
                        forwarded: true,
                    })
                })
            }
            Connector::Tunnel(tunnel) => {
                let connecting = tunnel.call(dst);
                Box::pin(async move {
                    Ok(Conn {
                        io: connecting.await?,
                        forwarded: false,
                    })
                })
            }
        }
    }
}

/// A TCP connection that knows whether requests on it go to a forwarding proxy.
pub(super) struct Conn {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
