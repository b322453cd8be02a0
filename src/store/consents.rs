//! Remembered consents: what a user allowed a client through the
//! authorization endpoint, when the application asked to remember it. One
//! row per (client, subject), replaced by each remembered approval,
//! deleted with its client or when the user revokes it.

use std::time::SystemTime;

use entity::consent;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, sea_query::OnConflict,
};

use super::{StoreError, db_time, system_time};
use crate::audience;

/// A remembered consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsentRow {
    pub(crate) client_id: String,
    pub(crate) subject: String,
    pub(crate) scope: String,
    pub(crate) resources: Vec<String>,
    pub(crate) redirect_uri: String,
    pub(crate) granted_at: SystemTime,
}

impl ConsentRow {
    fn from_row(r: consent::Model) -> Self {
        Self {
            resources: audience::split(r.resources.as_deref()),
            client_id: r.client_id,
            subject: r.subject,
            scope: r.scope,
            redirect_uri: r.redirect_uri,
            granted_at: system_time(r.granted_at),
        }
    }
}

/// Remembers `c`, replacing what the subject had allowed the client
/// before (one statement: an upsert, so concurrent approvals leave one
/// row).
pub(crate) async fn remember_in(
    db: &impl ConnectionTrait,
    c: &ConsentRow,
) -> Result<(), StoreError> {
    use consent::Column as C;
    let row = consent::ActiveModel {
        client_id: Set(c.client_id.clone()),
        subject: Set(c.subject.clone()),
        scope: Set(c.scope.clone()),
        resources: Set(audience::join(&c.resources)),
        redirect_uri: Set(c.redirect_uri.clone()),
        granted_at: Set(db_time(c.granted_at)),
    };
    consent::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::ClientId, C::Subject])
                .update_columns([C::Scope, C::Resources, C::RedirectUri, C::GrantedAt])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// The subject's consent for the client, if remembered.
pub(crate) async fn find(
    db: &DatabaseConnection,
    client_id: &str,
    subject: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    Ok(
        consent::Entity::find_by_id((client_id.to_owned(), subject.to_owned()))
            .one(db)
            .await?
            .map(ConsentRow::from_row),
    )
}

/// Every consent the subject has given, most recent first.
pub(crate) async fn of_subject(
    db: &DatabaseConnection,
    subject: &str,
) -> Result<Vec<ConsentRow>, StoreError> {
    use consent::Column as C;
    Ok(consent::Entity::find()
        .filter(C::Subject.eq(subject))
        .order_by_desc(C::GrantedAt)
        .order_by_asc(C::ClientId)
        .all(db)
        .await?
        .into_iter()
        .map(ConsentRow::from_row)
        .collect())
}

/// Forgets the subject's consent for the client. Whether there was one.
pub(crate) async fn forget(
    db: &DatabaseConnection,
    client_id: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    Ok(
        consent::Entity::delete_by_id((client_id.to_owned(), subject.to_owned()))
            .exec(db)
            .await?
            .rows_affected
            == 1,
    )
}
