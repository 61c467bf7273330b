//! Real TLS handshakes over loopback between the KDS server configuration and the
//! zone-side client configurations.

use super::*;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{ClientConfig, ServerConfig};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Serves one TLS connection with `server` and connects to it with `client` as `name`;
/// `Ok` only when the handshake succeeds and application data arrives.
async fn handshake(server: ServerConfig, client: ClientConfig, name: &str) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let serve = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let _ = tls.write_all(b"hello").await;
            let _ = tls.shutdown().await;
        }
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = server_name(name).map_err(|e| e.to_string())?;
    let result = async {
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        if buf == b"hello" {
            Ok(())
        } else {
            Err(format!("unexpected data {buf:?}"))
        }
    }
    .await;
    let _ = serve.await;
    result
}

fn generated() -> (tempfile::TempDir, KdsTls) {
    let dir = tempfile::tempdir().unwrap();
    let tls = KdsTls::load_or_create(&dir.path().join(KDS_TLS_DIR), &default_sans()).unwrap();
    (dir, tls)
}

fn pinned(fp: Fingerprint) -> ClientConfig {
    client_config(&ServerTrust::Pinned(fp)).unwrap()
}

// A zone given the CA file (--global-ca-file) connects.
#[tokio::test]
async fn handshake_with_ca_file() {
    let (dir, tls) = generated();
    let trust =
        ServerTrust::from_ca_file(&dir.path().join(KDS_TLS_DIR).join(CA_CERT_FILE)).unwrap();
    let client = client_config(&trust).unwrap();
    handshake(tls.server_config().unwrap(), client, "localhost")
        .await
        .unwrap();
}

// A zone holding only the CA fingerprint (from its token) connects, by name and by IP.
#[tokio::test]
async fn handshake_with_right_pin() {
    let (_dir, tls) = generated();
    let fp = tls.ca_fingerprint().unwrap();
    for name in ["localhost", "127.0.0.1"] {
        handshake(tls.server_config().unwrap(), pinned(fp), name)
            .await
            .unwrap();
    }
}

// A pin of some other CA is refused, with a message that names the pin.
#[tokio::test]
async fn handshake_fails_with_wrong_pin() {
    let (_dir, tls) = generated();
    let other = Ca::generate().unwrap().fingerprint();
    let err = handshake(tls.server_config().unwrap(), pinned(other), "localhost")
        .await
        .unwrap_err();
    assert!(err.contains("pinned CA fingerprint"), "{err}");
    assert!(err.contains(&other.to_string()), "{err}");
}

// A CA file of another CA is refused.
#[tokio::test]
async fn handshake_fails_with_wrong_ca() {
    let (_dir, tls) = generated();
    let other = Ca::generate().unwrap();
    let client =
        client_config(&ServerTrust::from_ca_pem(other.cert_pem().as_bytes()).unwrap()).unwrap();
    let err = handshake(tls.server_config().unwrap(), client, "localhost")
        .await
        .unwrap_err();
    // Both CAs share a subject name, so webpki finds the issuer by name and the
    // signature check fails; with another name it would be UnknownIssuer.
    assert!(
        err.contains("UnknownIssuer") || err.contains("BadSignature"),
        "{err}"
    );
}

// A name the certificate does not cover is refused, whether trusting by pin or CA file.
#[tokio::test]
async fn handshake_fails_with_wrong_server_name() {
    let (_dir, tls) = generated();
    let fp = tls.ca_fingerprint().unwrap();
    let err = handshake(tls.server_config().unwrap(), pinned(fp), "global.example")
        .await
        .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    let by_ca =
        client_config(&ServerTrust::from_ca_pem(tls.ca_cert_pem().unwrap().as_bytes()).unwrap())
            .unwrap();
    let err = handshake(tls.server_config().unwrap(), by_ca, "10.1.2.3")
        .await
        .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
}

// A server that presents only its leaf cannot be pinned: the CA is not in the chain.
#[tokio::test]
async fn handshake_fails_with_pin_when_chain_lacks_ca() {
    let ca = Ca::generate().unwrap();
    let leaf = ca.issue_server_cert(&default_sans()).unwrap();
    let tls = KdsTls::from_pem(&leaf.cert_pem, leaf.key_pem.clone()).unwrap();
    assert_eq!(tls.ca_fingerprint(), None);
    let err = handshake(
        tls.server_config().unwrap(),
        pinned(ca.fingerprint()),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(err.contains("pinned CA fingerprint"), "{err}");
}

// A chain signed by a different key than the pinned CA's fails even though a
// certificate with the pinned fingerprint is present: the pin chooses the root, the
// signatures are still checked.
#[tokio::test]
async fn pinned_ca_must_have_signed_the_leaf() {
    let (_dir, tls) = generated();
    let pinned_ca = tls.cert_chain().last().unwrap().clone();
    let other = Ca::generate().unwrap();
    let leaf = other.issue_server_cert(&default_sans()).unwrap();
    // Present leaf (signed by `other`) followed by the pinned CA.
    let chain_pem = format!("{}{}", leaf.cert_pem, tls.ca_cert_pem().unwrap());
    let forged = KdsTls::from_pem(&chain_pem, leaf.key_pem.clone()).unwrap();
    assert_eq!(
        forged.ca_fingerprint(),
        Some(Fingerprint::of_der(&pinned_ca))
    );
    let err = handshake(
        forged.server_config().unwrap(),
        pinned(Fingerprint::of_der(&pinned_ca)),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("BadSignature"),
        "{err}"
    );
}

// The pinned verifier checks validity periods: an instant after the leaf expires fails.
#[test]
fn pinned_verifier_checks_time() {
    let (_dir, tls) = generated();
    let verifier = PinnedCaVerifier::new(tls.ca_fingerprint().unwrap(), crypto_provider());
    let chain = tls.cert_chain();
    let name = server_name("localhost").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let at = |d: std::time::Duration| UnixTime::since_unix_epoch(d);
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], at(now))
        .unwrap();
    let later = now + SERVER_VALIDITY + std::time::Duration::from_secs(86_400);
    let err = verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], at(later))
        .unwrap_err();
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
}

// The fingerprint is the SHA-256 of the CA certificate's DER as written to ca.crt.
#[test]
fn fingerprint_is_sha256_of_ca_der() {
    use rustls::pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};
    let (dir, tls) = generated();
    let pem = std::fs::read(dir.path().join(KDS_TLS_DIR).join(CA_CERT_FILE)).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    assert_eq!(
        tls.ca_fingerprint().unwrap().to_string(),
        hex::encode(Sha256::digest(&der))
    );
}

// Files are created once (keys 0600) and reused unchanged on the next start.
#[test]
fn load_or_create_is_stable() {
    let (dir, first) = generated();
    let kds = dir.path().join(KDS_TLS_DIR);
    let second = KdsTls::load_or_create(&kds, &default_sans()).unwrap();
    assert_eq!(first.cert_chain_pem(), second.cert_chain_pem());
    assert_eq!(first.key_pem(), second.key_pem());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(kds.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(CA_KEY_FILE), 0o600);
        assert_eq!(mode(SERVER_KEY_FILE), 0o600);
        assert_eq!(
            std::fs::metadata(&kds).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}

// New SANs or an approaching expiry reissue the server certificate but keep the CA.
#[test]
fn server_cert_reissued_under_same_ca() {
    let (dir, first) = generated();
    let kds = dir.path().join(KDS_TLS_DIR);
    let mut sans = default_sans();
    sans.push("global.example".into());
    let wider = KdsTls::load_or_create(&kds, &sans).unwrap();
    assert_ne!(first.cert_chain_pem(), wider.cert_chain_pem());
    assert_eq!(first.ca_fingerprint(), wider.ca_fingerprint());

    let soon = time::OffsetDateTime::now_utc() + SERVER_VALIDITY - SERVER_RENEW_BEFORE
        + std::time::Duration::from_secs(86_400);
    let renewed = KdsTls::load_or_create_at(&kds, &sans, soon).unwrap();
    assert_ne!(wider.cert_chain_pem(), renewed.cert_chain_pem());
    assert_eq!(first.ca_fingerprint(), renewed.ca_fingerprint());
}

// A server key that no longer fits its certificate (crash between writes) is repaired.
#[test]
fn mismatched_server_key_is_repaired() {
    let (dir, first) = generated();
    let kds = dir.path().join(KDS_TLS_DIR);
    let other = Ca::generate().unwrap();
    std::fs::write(kds.join(SERVER_KEY_FILE), other.key_pem().expose()).unwrap();
    let repaired = KdsTls::load_or_create(&kds, &default_sans()).unwrap();
    assert_ne!(first.cert_chain_pem(), repaired.cert_chain_pem());
    assert_eq!(first.ca_fingerprint(), repaired.ca_fingerprint());
}

// A CA certificate whose key is gone is an error, never a silently replaced CA.
#[test]
fn missing_ca_key_is_an_error() {
    let (dir, _) = generated();
    let kds = dir.path().join(KDS_TLS_DIR);
    std::fs::remove_file(kds.join(CA_KEY_FILE)).unwrap();
    let err = KdsTls::load_or_create(&kds, &default_sans()).unwrap_err();
    assert!(err.to_string().contains("ca.key"), "{err}");
}

// User-provided files: a key of another certificate is refused; Debug hides the key.
#[test]
fn from_files_checks_key_and_redacts() {
    let (dir, tls) = generated();
    let kds = dir.path().join(KDS_TLS_DIR);
    let loaded =
        KdsTls::from_files(&kds.join(SERVER_CERT_FILE), &kds.join(SERVER_KEY_FILE)).unwrap();
    assert_eq!(loaded.ca_fingerprint(), tls.ca_fingerprint());
    let err = KdsTls::from_files(&kds.join(SERVER_CERT_FILE), &kds.join(CA_KEY_FILE)).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let debug = format!("{loaded:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

// SANs must be DNS names or IP addresses.
#[test]
fn bad_sans_are_refused() {
    let ca = Ca::generate().unwrap();
    assert!(ca.issue_server_cert(&[]).is_err());
    assert!(ca.issue_server_cert(&["not a name!".into()]).is_err());
}
