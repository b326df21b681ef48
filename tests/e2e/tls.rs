//! HTTPS end to end, with a private CA made in the test by the `openssl`
//! command: `stepline serve` with `[tls]` answers over TLS only; clients
//! that trust the CA get in (reqwest with the CA, the CLI through
//! `--ca-file`, `STEPLINE_CA_FILE` or `SSL_CERT_FILE`), clients that do not are refused; an HTTP task reaches
//! an HTTPS endpoint signed by the CA through `[tasks.http] ca_file` (or
//! `system_roots` with the CA in `SSL_CERT_FILE`), and fails without it;
//! SIGHUP makes the server present a renewed certificate, and a broken
//! renewal keeps the one in use.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::eventually;
use crate::support::{TempDir, stepline_binary};

/// Runs `openssl` with `args` in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`, `ca.key`) in `dir`.
pub(crate) fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=stepline test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A server certificate `NAME.pem` and key `NAME.key` for localhost and
/// 127.0.0.1, signed by the CA in `dir`, with common name `NAME`.
pub(crate) fn make_server_cert(dir: &Path, name: &str) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write");
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// `stepline serve` over TLS, its stderr in a file.
struct Serve {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Serve {
    fn start(data: &Path, config: &Path, log: PathBuf) -> Self {
        Self::start_with_env(data, config, log, &[])
    }

    fn start_with_env(data: &Path, config: &Path, log: PathBuf, env: &[(&str, &Path)]) -> Self {
        let mut child = Command::new(stepline_binary())
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("serve starts");
        let addr = crate::support::listening_address(&mut child, "https").unwrap_or_else(|line| {
            panic!(
                "no https address in {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client trusting the CA in `ca` only (no built-in roots).
fn client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("ca");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The subject of the certificate the server presents to a new connection.
fn presented_subject(addr: SocketAddr, dir: &Path) -> String {
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args(["-CAfile", "ca.pem", "-verify_return_error"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let _ = client.stdin.take().expect("stdin").write_all(b"");
    let out = client.wait_with_output().expect("s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("subject="))
        // OpenSSL versions differ on spaces around '='.
        .map(|s| s.replace(' ', ""))
        .unwrap_or_else(|| panic!("no subject in {text}"))
}

/// What HTTP tasks trust besides Mozilla's roots.
#[derive(Clone, Copy)]
enum Trust {
    Nothing,
    CaFile,
    SystemRoots,
}

fn config(dir: &Path, trust: Trust) -> PathBuf {
    let mut text = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n\n[tasks.http]\nallow_own_address = true\n",
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
    );
    let name = match trust {
        Trust::Nothing => "nothing.toml",
        Trust::CaFile => {
            text.push_str(&format!(
                "ca_file = {:?}\n",
                dir.join("ca.pem").display().to_string()
            ));
            "ca-file.toml"
        }
        Trust::SystemRoots => {
            text.push_str("system_roots = true\n");
            "system-roots.toml"
        }
    };
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Runs an HTTP task calling the server's own `/health` over HTTPS; the
/// execution as REST describes it when it ends.
async fn call_own_health(client: &reqwest::Client, serve: &Serve, name: &str) -> Value {
    let definition = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                 "Parameters": {"ApiEndpoint": serve.url("/health"), "Method": "GET"},
                 "End": true}}});
    let created = client
        .post(serve.url(&format!("/v1/state-machines?name={name}")))
        .header("content-type", "application/json")
        .body(definition.to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let started = client
        .post(serve.url(&format!("/v1/state-machines/{name}/executions?name=run")))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 201, "{:?}", started.text().await);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = client
            .get(serve.url(&format!("/v1/executions/{name}/run")))
            .send()
            .await
            .expect("describe")
            .text()
            .await
            .expect("body");
        let described: Value = serde_json::from_str(&described).expect("json");
        if described["status"] != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "the task never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn https_with_a_private_ca_for_the_server_the_cli_and_http_tasks() {
    let dir = TempDir::new("tls");
    let d = dir.path();
    make_ca(d);
    make_server_cert(d, "stepline-one");
    std::fs::copy(d.join("stepline-one.pem"), d.join("server.pem")).expect("copy");
    std::fs::copy(d.join("stepline-one.key"), d.join("server.key")).expect("copy");
    let serve = Serve::start(
        &d.join("data"),
        &config(d, Trust::CaFile),
        d.join("serve.log"),
    );
    let rt = runtime();
    let trusted = client(&d.join("ca.pem"));

    // Clients that trust the CA get in; others are refused; plain HTTP on
    // the TLS port gets no answer.
    let health = rt.block_on(async {
        trusted
            .get(serve.url("/health"))
            .send()
            .await
            .expect("https")
            .text()
            .await
            .expect("body")
    });
    assert_eq!(health, "ok\n");
    let untrusting = reqwest::Client::new();
    let refused = rt.block_on(untrusting.get(serve.url("/health")).send());
    assert!(refused.is_err(), "a client without the CA is refused");
    let plain = rt.block_on(
        untrusting
            .get(format!("http://{}/health", serve.addr))
            .send(),
    );
    assert!(plain.is_err(), "plain HTTP on the TLS port: {plain:?}");

    // The CLI trusts the system's roots, and SSL_CERT_FILE names a CA file.
    let cli = |ssl_cert_file: Option<&Path>| {
        let mut command = Command::new(stepline_binary());
        command
            .args(["machines", "list", "-o", "json", "--endpoint"])
            .arg(format!("https://127.0.0.1:{}", serve.addr.port()))
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(file) = ssl_cert_file {
            command.env("SSL_CERT_FILE", file);
        }
        command.output().expect("the CLI runs")
    };
    let listed = cli(Some(&d.join("ca.pem")));
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let without = cli(None);
    assert!(!without.status.success());
    let message = String::from_utf8_lossy(&without.stderr).to_lowercase();
    assert!(message.contains("certificate"), "{message}");
    // Or --ca-file (or STEPLINE_CA_FILE) names the CA, with no change to
    // the process's environment.
    let with_ca_file = |how: &str, file: &Path| {
        let mut command = Command::new(stepline_binary());
        command
            .args(["machines", "list", "-o", "json", "--endpoint"])
            .arg(format!("https://127.0.0.1:{}", serve.addr.port()))
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("STEPLINE_CA_FILE");
        if how == "option" {
            command.arg("--ca-file").arg(file);
        } else {
            command.env("STEPLINE_CA_FILE", file);
        }
        command.output().expect("the CLI runs")
    };
    for how in ["option", "environment"] {
        let listed = with_ca_file(how, &d.join("ca.pem"));
        assert!(
            listed.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let unusable = with_ca_file("option", &d.join("ca.key"));
    assert_eq!(unusable.status.code(), Some(2));
    let message = String::from_utf8_lossy(&unusable.stderr);
    assert!(
        message.contains("--ca-file") && message.contains("holds no PEM certificate"),
        "{message}"
    );

    // An HTTP task to an HTTPS endpoint signed by the CA: [tasks.http]
    // ca_file lets it through.
    let done = rt.block_on(call_own_health(&trusted, &serve, "with-ca"));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["ResponseBody"], "ok\n", "{done}");

    // SIGHUP: a renewed certificate is presented to new connections.
    assert_eq!(presented_subject(serve.addr, d), "CN=stepline-one");
    make_server_cert(d, "stepline-two");
    std::fs::copy(d.join("stepline-two.pem"), d.join("server.pem")).expect("copy");
    std::fs::copy(d.join("stepline-two.key"), d.join("server.key")).expect("copy");
    serve.hang_up();
    eventually("the renewed certificate", 10, || {
        presented_subject(serve.addr, d) == "CN=stepline-two"
    });
    // A broken renewal (a key of another certificate) keeps the one in use.
    std::fs::copy(d.join("stepline-one.key"), d.join("server.key")).expect("copy");
    serve.hang_up();
    eventually("the refused reload logged", 10, || {
        std::fs::read_to_string(&serve.log)
            .unwrap_or_default()
            .contains("TLS certificate not reloaded")
    });
    assert_eq!(presented_subject(serve.addr, d), "CN=stepline-two");
    let health = rt.block_on(async {
        trusted
            .get(serve.url("/health"))
            .send()
            .await
            .expect("still serving")
            .status()
    });
    assert_eq!(health, 200);
    std::fs::copy(d.join("stepline-two.key"), d.join("server.key")).expect("copy");
    drop(serve);

    // Without ca_file the same task fails on the certificate.
    let serve = Serve::start(
        &d.join("data2"),
        &config(d, Trust::Nothing),
        d.join("serve2.log"),
    );
    let done = rt.block_on(call_own_health(&trusted, &serve, "without-ca"));
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.Http.Socket", "{done}");
    let cause = done["cause"].as_str().unwrap_or_default().to_lowercase();
    assert!(cause.contains("certificate"), "{cause}");
    drop(serve);

    // system_roots: the system's store, here the file SSL_CERT_FILE names.
    let serve = Serve::start_with_env(
        &d.join("data3"),
        &config(d, Trust::SystemRoots),
        d.join("serve3.log"),
        &[("SSL_CERT_FILE", &d.join("ca.pem"))],
    );
    let done = rt.block_on(call_own_health(&trusted, &serve, "system-roots"));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
}

/// Mistakes in `[tls]` and the flags stop the start with the file's name.
#[test]
fn tls_mistakes_stop_the_start() {
    let dir = TempDir::new("tls-mistakes");
    let d = dir.path();
    make_ca(d);
    make_server_cert(d, "one");
    make_server_cert(d, "two");
    let serve = |args: &[&str]| {
        let out = Command::new(stepline_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(d.join("data"))
            .args(args)
            .current_dir(d)
            .output()
            .expect("serve runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (args, words) in [
        (vec!["--tls-cert", "one.pem"], "without key_file"),
        (
            vec!["--tls-cert", "missing.pem", "--tls-key", "one.key"],
            "cannot read missing.pem",
        ),
        (
            vec!["--tls-cert", "one.key", "--tls-key", "one.key"],
            "holds no certificate",
        ),
        (
            vec!["--tls-cert", "one.pem", "--tls-key", "one.pem"],
            "holds no private key",
        ),
        (
            vec!["--tls-cert", "one.pem", "--tls-key", "two.key"],
            "cannot be used with the certificate",
        ),
    ] {
        let (status, stderr) = serve(&args);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    for (text, words) in [
        (
            "[tls]\nkey_file = \"one.key\"\n",
            "key_file is set without cert_file",
        ),
        (
            "[tasks.http]\nca_file = \"missing.pem\"\n",
            "tasks.http.ca_file: cannot read missing.pem",
        ),
        (
            "[tasks.http]\nca_file = \"one.key\"\n",
            "tasks.http.ca_file: one.key holds no PEM certificate",
        ),
    ] {
        let config = d.join("config.toml");
        std::fs::write(&config, text).expect("write");
        let (status, stderr) = serve(&["--config", config.to_str().expect("utf-8")]);
        assert_eq!(status, Some(2), "{text}: {stderr}");
        assert!(stderr.contains(words), "{text}: {stderr}");
    }
}
