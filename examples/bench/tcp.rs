//! Black holes: endpoints that accept connections and never answer.

use tokio::net::TcpListener;

pub struct BlackHoles {
    ports: Vec<u16>,
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
}

impl BlackHoles {
    pub async fn start(count: usize) -> BlackHoles {
        let mut ports = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..count {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            ports.push(listener.local_addr().unwrap().port());
            tasks.push(actix_rt::spawn(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    held.push(socket);
                }
            }));
        }
        BlackHoles { ports, tasks }
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/hole"))
            .collect()
    }
}

impl Drop for BlackHoles {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
