//! `stepline-load`: a load generator for the AWS dialect of a running
//! `stepline serve`, for the figures in docs/performance.md.
//!
//! It creates one state machine (`--type`, `--states` Pass states in a
//! chain), then keeps `--connections` keep-alive connections busy for
//! `--seconds`, each sending `--action` (StartExecution or
//! StartSyncExecution) back to back, and prints requests per second and
//! latency percentiles. Raw HTTP/1.1 over tokio TCP: a real client's
//! parsing would take CPU from the server on a 2-core machine.
//!
//! ```sh
//! cargo build --release -p stepline -p stepline-tests --bin stepline --bin stepline-load
//! target/release/stepline serve --data-dir /tmp/bench-data &
//! target/release/stepline-load --type EXPRESS --action StartExecution --connections 64 --seconds 10
//! ```
//!
//! `--also ADDR` (repeatable) names more nodes of the same cluster: the
//! connections are spread over them all, round robin, and the state
//! machine is created through `--addr`. Each started execution enters
//! `--states` states, so with STANDARD executions the figure printed as
//! transitions/s counts durable transitions.
//!
//! `--mode slowloris` attacks instead: `--connections` connections each
//! send a request head one header line every `--interval` seconds, never
//! finishing it, and reopen at the next tick when the server closes them;
//! meanwhile a probe opens a fresh connection for `GET /health` every
//! 100 ms and prints its latency (p50, p99, max) and how many probes got
//! no 200. `--attack-from IP` sends the attack from another loopback
//! address than the probe (by default both share 127.0.0.1, the worst
//! case for a per-client limit).
//!
//! ```sh
//! target/release/stepline-load --mode slowloris --connections 1030 --interval 5 --seconds 60
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    addr: SocketAddr,
    /// More nodes of the same cluster, sharing the connections.
    also: Vec<SocketAddr>,
    mode: Mode,
    /// Seconds between two header lines of an attack connection.
    interval: u64,
    /// The attack's source address (the probe's is the system's choice).
    attack_from: Option<std::net::IpAddr>,
    machine_type: String,
    states: usize,
    action: String,
    connections: usize,
    seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Requests,
    Slowloris,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 8083)),
        also: Vec::new(),
        mode: Mode::Requests,
        interval: 5,
        attack_from: None,
        machine_type: "EXPRESS".into(),
        states: 1,
        action: "StartExecution".into(),
        connections: 64,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => options.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--also" => options
                .also
                .push(value()?.parse().map_err(|e| format!("--also: {e}"))?),
            "--mode" => {
                options.mode = match value()?.as_str() {
                    "requests" => Mode::Requests,
                    "slowloris" => Mode::Slowloris,
                    other => return Err(format!("--mode: '{other}' is not requests or slowloris")),
                }
            }
            "--interval" => {
                options.interval = value()?.parse().map_err(|e| format!("--interval: {e}"))?
            }
            "--attack-from" => {
                options.attack_from = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--attack-from: {e}"))?,
                )
            }
            "--type" => options.machine_type = value()?,
            "--states" => {
                options.states = value()?.parse().map_err(|e| format!("--states: {e}"))?
            }
            "--action" => options.action = value()?,
            "--connections" => {
                options.connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
            }
            "--seconds" => {
                options.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.states == 0 || options.connections == 0 || options.interval == 0 {
        return Err("--states, --connections and --interval must be at least 1".into());
    }
    Ok(options)
}

/// One keep-alive connection: sends a request and reads one response.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(8192),
        })
    }

    /// The status and body of one AWS-dialect call.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buffer.len() < end + 4 + length {
                    self.read_more().await?;
                }
                return Ok((status, self.buffer[end + 4..end + 4 + length].to_vec()));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn request(addr: SocketAddr, action: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AWSStepFunctions.{action}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A chain of `n` Pass states.
fn definition(n: usize) -> String {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut state = json!({"Type": "Pass"});
        if i + 1 == n {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": states}).to_string()
}

async fn setup(options: &Options) -> Result<String, String> {
    let mut connection = Connection::open(options.addr)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", options.addr))?;
    let name = format!(
        "load-{}-{}-{}",
        options.machine_type.to_lowercase(),
        options.states,
        std::process::id()
    );
    let body = json!({"name": name, "definition": definition(options.states),
        "roleArn": "arn:aws:iam::111111111111:role/load", "type": options.machine_type});
    let (status, reply) = connection
        .call(&request(
            options.addr,
            "CreateStateMachine",
            &body.to_string(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let reply: Value = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("CreateStateMachine: {status} {reply}"));
    }
    reply["stateMachineArn"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no ARN in {reply}"))
}

/// Per-connection results: latencies in microseconds and error count.
async fn worker(addr: SocketAddr, request: Vec<u8>, deadline: Instant) -> (Vec<u32>, u64) {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let Ok(mut connection) = Connection::open(addr).await else {
        return (latencies, 1);
    };
    while Instant::now() < deadline {
        let start = Instant::now();
        match connection.call(&request).await {
            Ok((200, _)) => {
                latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                match Connection::open(addr).await {
                    Ok(c) => connection = c,
                    Err(_) => break,
                }
            }
        }
    }
    (latencies, errors)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("stepline-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if options.mode == Mode::Slowloris {
        return runtime.block_on(slowloris(&options));
    }
    runtime.block_on(async {
        let arn = match setup(&options).await {
            Ok(arn) => arn,
            Err(e) => {
                eprintln!("stepline-load: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        let body = json!({"stateMachineArn": arn, "input": "{\"order\":{\"id\":1}}"}).to_string();
        let nodes: Vec<SocketAddr> = std::iter::once(options.addr)
            .chain(options.also.iter().copied())
            .collect();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(options.seconds);
        let workers: Vec<_> = (0..options.connections)
            .map(|i| {
                let addr = nodes[i % nodes.len()];
                let request = request(addr, &options.action, &body);
                tokio::spawn(worker(addr, request, deadline))
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for w in workers {
            if let Ok((l, e)) = w.await {
                latencies.extend(l);
                errors += e;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        println!(
            "{} {} states={} nodes={} connections={} seconds={:.1}: {} ok, {} errors, {:.0} req/s, {:.0} transitions/s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
            options.action,
            options.machine_type,
            options.states,
            nodes.len(),
            options.connections,
            elapsed,
            latencies.len(),
            errors,
            latencies.len() as f64 / elapsed,
            (latencies.len() * options.states) as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.9),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.999),
            percentile(&latencies, 1.0),
        );
        std::process::ExitCode::SUCCESS
    })
}

/// What the attack connections did.
#[derive(Debug, Default, Clone, Copy)]
struct AttackCounts {
    opened: u64,
    /// Closed by the server (cut off, or made room for another).
    closed: u64,
    /// Could not connect at all.
    refused: u64,
}

async fn attack_connect(
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// One slowloris connection until `deadline`: a request line, then a
/// header line every `interval`, never the blank line that ends the head;
/// reopened at the next tick when the server closes it.
async fn attacker(
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
    interval: Duration,
    deadline: Instant,
) -> AttackCounts {
    let mut counts = AttackCounts::default();
    let mut stream: Option<TcpStream> = None;
    let mut line = 0u64;
    while Instant::now() < deadline {
        if stream.is_none() {
            match attack_connect(addr, from).await {
                Ok(mut s) => {
                    counts.opened += 1;
                    let head = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n");
                    if s.write_all(head.as_bytes()).await.is_ok() {
                        stream = Some(s);
                    } else {
                        counts.closed += 1;
                    }
                }
                Err(_) => counts.refused += 1,
            }
        }
        let tick = tokio::time::sleep_until((Instant::now() + interval).min(deadline).into());
        tokio::pin!(tick);
        let Some(s) = stream.as_mut() else {
            tick.await;
            continue;
        };
        let mut buffer = [0u8; 1024];
        tokio::select! {
            () = &mut tick => {
                line += 1;
                if s.write_all(format!("X-Line-{line}: {line}\r\n").as_bytes()).await.is_err() {
                    counts.closed += 1;
                    stream = None;
                }
            }
            _ = s.read(&mut buffer) => {
                // An answer (503, 408) or the end: the server let go.
                counts.closed += 1;
                stream = None;
                // Reopen at the next tick, as slowloris tools do.
                tick.await;
            }
        }
    }
    counts
}

/// One `GET /health` on a fresh connection: its latency, or `None` when
/// it got no 200 within 60 s.
async fn probe(addr: SocketAddr) -> Option<Duration> {
    let start = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(
                format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    };
    match tokio::time::timeout(Duration::from_secs(60), attempt).await {
        Ok(Some(())) => Some(start.elapsed()),
        _ => None,
    }
}

async fn slowloris(options: &Options) -> std::process::ExitCode {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(options.seconds);
    let interval = Duration::from_secs(options.interval);
    let attackers: Vec<_> = (0..options.connections)
        .map(|_| {
            tokio::spawn(attacker(
                options.addr,
                options.attack_from,
                interval,
                deadline,
            ))
        })
        .collect();
    // Let the attack take its places before the first probe.
    tokio::time::sleep(Duration::from_millis(500).min(interval)).await;
    let mut latencies = Vec::new();
    let mut failed = 0u64;
    let mut probes = Vec::new();
    while Instant::now() < deadline {
        probes.push(tokio::spawn(probe(options.addr)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in probes {
        match p.await {
            Ok(Some(latency)) => {
                latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            _ => failed += 1,
        }
    }
    let mut counts = AttackCounts::default();
    for a in attackers {
        if let Ok(c) = a.await {
            counts.opened += c.opened;
            counts.closed += c.closed;
            counts.refused += c.refused;
        }
    }
    latencies.sort_unstable();
    println!(
        "slowloris connections={} interval={}s seconds={:.1}: attack opened {} connections, {} closed by the server, {} could not connect; /health {} ok, {} failed; latency ms p50 {:.3} p99 {:.3} max {:.3}",
        options.connections,
        options.interval,
        start.elapsed().as_secs_f64(),
        counts.opened,
        counts.closed,
        counts.refused,
        latencies.len(),
        failed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    std::process::ExitCode::SUCCESS
}
