//! The server under test: started in-process on a port-0 listener over its own SQLite store,
//! with one enrolled organization, its administrator, and a known set of events spread over
//! the last 20 days. Dropping the [`App`] stops the server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use auditlog_core::{Event, NewEvent, Timestamp};
use auditlog_server::{AppState, ServerConfig};
use auditlog_service::access::Actor;
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{NewOrg, Org, Role, Store, User};
use serde_json::json;
use tokio::sync::oneshot;

/// The enrolled organization's name.
pub const ORG: &str = "acme";
/// Its administrator's email and password.
pub const ADMIN_EMAIL: &str = "admin@acme.example";
pub const PASSWORD: &str = "correct horse battery";

/// How many events are seeded.
pub const SEEDED: usize = 130;
/// Hours between two seeded events: 130 events over about 19 days.
const HOURS_APART: i64 = 3;

/// Who the seeded events are by (email, name), in turn.
pub const ACTORS: [(&str, &str); 4] = [
    ("alice@acme.example", "Alice Anders"),
    ("bob@acme.example", "Bob Brown"),
    ("carol@acme.example", "Carol Chen"),
    ("dave@acme.example", "Dave Diaz"),
];

/// The seeded actions (catalog keys), in turn.
pub const ACTIONS: [&str; 7] = [
    "channel_created",
    "policy_created",
    "token_created",
    "channel_deleted",
    "group_assigned_to_channel",
    "organization_user_added",
    "policy_updated",
];

/// The one event seeded with every field set, to check the details page against.
pub fn rich_event(occurred_at: Timestamp) -> NewEvent {
    NewEvent {
        action_key: "policy_assigned".into(),
        actor_id: Some("usr_7f3a9c".into()),
        actor_email: Some("erin@acme.example".into()),
        actor_name: Some("Erin Eriksen".into()),
        actor_type: Some("user".into()),
        target_id: Some("pol_prod_readers".into()),
        target_email: Some("readers@acme.example".into()),
        target_name: Some("prod-readers".into()),
        target_type: Some("policy".into()),
        service_name: Some("iam-gateway".into()),
        ip_address: Some("203.0.113.42".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0".into()),
        request_id: Some("req-rich-0001".into()),
        meta: Some(json!({
            "policy": { "name": "prod-readers", "version": 3 },
            "channels": ["ml-prod", "ml-staging"],
            "reason": "quarterly access review",
        })),
        occurred_at: Some(occurred_at.to_string()),
        ..NewEvent::default()
    }
}

/// A running server and what it was seeded with.
pub struct App {
    /// The data directory (SQLite file, signing key, exports); removed on drop.
    pub _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub service: Service,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port`.
    pub base: String,
    pub org: Org,
    pub admin: User,
    /// The server's public key, hex (to verify exports).
    pub public_key: String,
    /// The seeded events as stored, in the order they were ingested.
    pub events: Vec<Event>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl App {
    /// Starts a server with `acme`, its administrator and [`SEEDED`] + 1 events.
    pub async fn start() -> Result<App> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(SqliteStore::open(dir.path())?);
        let key = auditlog_service::keys::load_or_create(dir.path())?;
        let public_key = auditlog_service::keys::public_key_hex(&key.verifying_key());
        let service = Service::new(store.clone(), auditlog_core::Catalog::builtin(), key);
        let org = store
            .create_org(NewOrg {
                name: ORG.into(),
                display_name: "Acme".into(),
                audit_logs_enabled: true,
            })
            .await?;
        let admin = service
            .add_user(
                &org,
                ADMIN_EMAIL,
                Some("Ada Admin"),
                Role::Admin,
                &Actor::operator(),
            )
            .await?;
        service.set_password(&admin, PASSWORD).await?;

        let now = Timestamp::now();
        let mut seed: Vec<NewEvent> = (0..SEEDED as i64)
            .map(|i| {
                let (email, name) = ACTORS[i as usize % ACTORS.len()];
                let action = ACTIONS[i as usize % ACTIONS.len()];
                NewEvent {
                    action_key: action.into(),
                    actor_email: Some(email.into()),
                    actor_name: Some(name.into()),
                    target_name: Some(format!("ml-channel-{i:03}")),
                    ip_address: Some(format!("198.51.100.{}", i % 250 + 1)),
                    meta: Some(json!({ "n": i })),
                    occurred_at: Some(
                        now.plus_millis(-(i * HOURS_APART + 1) * 3_600_000 - i * 1000)
                            .to_string(),
                    ),
                    ..NewEvent::default()
                }
            })
            .collect();
        // The rich event sits among the others, a day and a half ago.
        seed.push(rich_event(now.plus_millis(-36 * 3_600_000 - 1_800_000)));
        let events = service.ingest(Some(&org), seed).await?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let state = AppState::new(
            service.clone(),
            ServerConfig::new(dir.path().join("exports"), base.clone()),
        );
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(auditlog_server::serve(state, listener, async move {
            let _ = stop.await;
        }));
        Ok(App {
            _dir: dir,
            store,
            service,
            addr,
            base,
            org,
            admin,
            public_key,
            events,
            shutdown: Some(shutdown),
        })
    }

    /// The absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `host:port`, for raw requests.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// How many events the organization holds now (seeded, and those the page's own
    /// actions recorded: sign-ins, exports).
    pub async fn total(&self) -> Result<u64> {
        Ok(self.store.chain_head(self.org.id).await?.seq)
    }

    /// Adds a user to an organization, with the shared password.
    pub async fn user(&self, org: &Org, email: &str, role: Role) -> Result<User> {
        let user = self
            .service
            .add_user(org, email, None, role, &Actor::operator())
            .await?;
        self.service
            .set_password(&user, PASSWORD)
            .await
            .context("set password")?;
        Ok(user)
    }

    /// Creates another organization.
    pub async fn other_org(&self, name: &str, display: &str, enabled: bool) -> Result<Org> {
        Ok(self
            .store
            .create_org(NewOrg {
                name: name.into(),
                display_name: display.into(),
                audit_logs_enabled: enabled,
            })
            .await?)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
