//! The tests' faulting proxy (`jrtc_testkit::proxy`) against an echo server: forwarding, a
//! reset, a black hole and its release, and refusing new connections while down.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use jrtc_testkit::proxy::{Cut, Proxy};

#[tokio::test]
async fn proxy_forwards_and_cuts() {
    use tokio::time::timeout;

    let echo = TcpListener::bind("127.0.0.1:0").await.expect("echo binds");
    let upstream = echo.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    let proxy = Proxy::start(upstream).await;
    assert_eq!(proxy.url(), format!("ws://{}", proxy.addr()));
    let wait = Duration::from_secs(5);
    let mut buf = [0u8; 16];

    // Forwarding, then a reset.
    let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
    client.write_all(b"hello").await.expect("write");
    timeout(wait, client.read_exact(&mut buf[..5]))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(&buf[..5], b"hello");
    proxy.wait_accepted(1).await;
    assert_eq!((proxy.accepted(), proxy.live()), (1, 1));
    proxy.cut(Cut::Reset);
    assert_eq!(proxy.live(), 0);
    match timeout(wait, client.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("expected EOF or an error after a reset, got {other:?}"),
    }

    // A black hole: silence on an open socket until released.
    let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
    client.write_all(b"a").await.expect("write");
    timeout(wait, client.read_exact(&mut buf[..1]))
        .await
        .expect("echo in time")
        .expect("echo");
    proxy.wait_accepted(2).await;
    assert_eq!(proxy.live(), 1);
    proxy.cut(Cut::BlackHole);
    assert_eq!(proxy.live(), 0);
    client.write_all(b"b").await.expect("write to a black hole");
    let silent = timeout(Duration::from_millis(200), client.read(&mut buf)).await;
    assert!(silent.is_err(), "a black hole answered: {silent:?}");
    proxy.release_black_holes();
    match timeout(wait, client.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("expected EOF or an error after the release, got {other:?}"),
    }

    // Down: new connections are refused.
    proxy.set_down(true);
    let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
    match timeout(wait, client.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("expected EOF or an error while down, got {other:?}"),
    }
    assert_eq!((proxy.accepted(), proxy.live()), (3, 0));
}
