use super::*;
use weft_model::proxy::admin::Format;
use weft_model::resource::{ResourceType, parse_resource};
use weft_store::MemoryStore;

const MESH: &str = "type: Mesh\nname: default\n";
const WEB: &str = "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: web\n";

async fn relay_with_web() -> Relay {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    for doc in [MESH, WEB] {
        store
            .create(parse_resource(doc.as_bytes(), false).unwrap())
            .await
            .unwrap();
    }
    Relay::new(store)
}

fn web() -> ProxyRef {
    ProxyRef::new(ResourceType::Dataplane, Some("default"), "web-1").unwrap()
}

// A request for a connected proxy goes down its relay as one command and
// comes back with weft-dp's answer.
#[tokio::test]
async fn requests_go_down_the_relay_and_answers_come_back() {
    let relay = relay_with_web().await;
    let (conn, mut commands) = relay.connect(web(), Some("tok".into()));
    let session = conn.session.clone();
    let r = relay.clone();
    let query = AdminQuery {
        format: Format::Json,
        ..AdminQuery::default()
    };
    let request = tokio::spawn(async move {
        r.execute(&web(), AdminOp::Stats, &query, Duration::from_secs(5))
            .await
    });
    let command = commands.recv().await.unwrap();
    assert_eq!(command.op, AdminOp::Stats);
    assert_eq!(command.query.format, Format::Json);
    // Another token cannot answer; an unknown session neither.
    assert_eq!(
        relay.answer(&session, Some("other"), command.id, Outcome::TooLarge),
        Err(AnswerError::WrongToken)
    );
    assert!(matches!(
        relay.answer("nope", Some("tok"), command.id, Outcome::TooLarge),
        Err(AnswerError::UnknownSession(_))
    ));
    let reply = AdminReply {
        content_type: "application/json".into(),
        body: br#"{"stats":[]}"#.to_vec(),
    };
    relay
        .answer(
            &session,
            Some("tok"),
            command.id,
            Outcome::Reply(reply.clone()),
        )
        .unwrap();
    assert_eq!(request.await.unwrap().unwrap(), reply);
    // Answered once: a second answer finds nothing waiting.
    assert_eq!(
        relay.answer(&session, Some("tok"), command.id, Outcome::TooLarge),
        Err(AnswerError::UnknownRequest(command.id))
    );
    drop(conn);
}

// Unknown proxy → 404 naming it; known but no relay → 503 naming it; a relay
// that does not answer → 504; Envoy's failures name the proxy.
#[tokio::test(start_paused = true)]
async fn errors_name_the_proxy() {
    let relay = relay_with_web().await;
    let ghost = ProxyRef::new(ResourceType::Dataplane, Some("default"), "ghost").unwrap();
    let e = relay
        .execute(
            &ghost,
            AdminOp::Stats,
            &AdminQuery::default(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(
        e.to_string().contains("Dataplane default/ghost not found"),
        "{e}"
    );
    let e = relay
        .execute(
            &web(),
            AdminOp::Stats,
            &AdminQuery::default(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(
        e.to_string()
            .contains("Dataplane default/web-1 is not connected"),
        "{e}"
    );

    let (conn, mut commands) = relay.connect(web(), None);
    let e = relay
        .execute(
            &web(),
            AdminOp::Clusters,
            &AdminQuery::default(),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 504);
    assert!(e.to_string().contains("Dataplane default/web-1"), "{e}");
    let late = commands.recv().await.unwrap();
    assert!(
        relay
            .answer(&conn.session, None, late.id, Outcome::TooLarge)
            .is_err()
    );

    let r = relay.clone();
    let request = tokio::spawn(async move {
        r.execute(
            &web(),
            AdminOp::XdsConfig,
            &AdminQuery::default(),
            Duration::from_secs(10),
        )
        .await
    });
    let c = commands.recv().await.unwrap();
    relay
        .answer(
            &conn.session,
            None,
            c.id,
            Outcome::Envoy("connection refused".into()),
        )
        .unwrap();
    let e = request.await.unwrap().unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(
        e.to_string()
            .contains("Envoy of Dataplane default/web-1 failed: connection refused"),
        "{e}"
    );
}

// A reconnecting weft-dp replaces its old relay (what waited on it fails with
// 503); the old one closing later does not unregister the new one; the last
// one closing does.
#[tokio::test]
async fn reconnects_replace_the_relay() {
    let relay = relay_with_web().await;
    let (old, mut old_commands) = relay.connect(web(), None);
    let r = relay.clone();
    let request = tokio::spawn(async move {
        r.execute(
            &web(),
            AdminOp::Stats,
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
    });
    old_commands.recv().await.unwrap();
    let (new, _new_commands) = relay.connect(web(), None);
    let e = request.await.unwrap().unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("reconnected"), "{e}");
    drop(old);
    assert!(relay.is_connected(&web()));
    drop(new);
    assert!(!relay.is_connected(&web()));
}
