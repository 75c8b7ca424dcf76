//! Free loopback ports for processes that bind them themselves (the service binary, a private
//! redis-server, nginx). Shared by the tests and the bench (`examples/bench`, through `#[path]`).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A port that was free a moment ago and that this process has not handed out before. The
/// kernel can give the same port to two binds in a row once the first listener is closed, so
/// two services started back to back could both be told to listen on it, and the second
/// would fail with "Address already in use" (seen: a three-instance test waiting for its
/// third instance).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port on loopback")
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}
