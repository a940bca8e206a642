//! What the service's integration tests share: making an organization as the operator does.

use auditlog_service::grant::{Operator, ReadableOrg};
use auditlog_service::Service;
use auditlog_store::NewOrg;

/// A new enrolled organization, as the operator sees it.
pub async fn create_org(service: &Service, name: &str) -> ReadableOrg {
    let operator = Operator::at_the_command_line();
    service
        .create_org(
            &operator,
            NewOrg {
                name: name.into(),
                display_name: name.into(),
                audit_logs_enabled: true,
            },
        )
        .await
        .unwrap();
    service
        .operator_org(&operator, name)
        .await
        .unwrap()
        .expect("the organization was just created")
}
