//! Device sessions: a second credential some vendors need on top of the access token (Homey:
//! the cloud token buys a delegation token, which buys a session on one Homey). The vendor
//! module opens one ([`crate::providers::Vendor::open_session`]); keeping it is the token
//! keeper's job, like every other credential: reused while usable, opened once per connection
//! at a time, stored with the token record so every instance shares it.

use std::future::Future;

use super::TokenKeeper;
use crate::config::Connection;
use crate::error::{ActionError, TokenError};
use crate::store::StoreError;
use crate::token::{DeviceSession, TokenRecord};

impl TokenKeeper {
    /// A device session for `conn` that `usable` accepts: `record`'s, else the stored one
    /// (another caller may have opened one meanwhile), else a new one from `open`, stored on
    /// the connection's record. One `open` per connection at a time.
    pub async fn device_session<Open, Opening>(
        &self,
        conn: &Connection,
        record: &TokenRecord,
        usable: impl Fn(&DeviceSession) -> bool,
        open: Open,
    ) -> Result<DeviceSession, ActionError>
    where
        Open: FnOnce() -> Opening,
        Opening: Future<Output = Result<DeviceSession, ActionError>>,
    {
        if let Some(s) = &record.session
            && usable(s)
        {
            return Ok(s.clone());
        }
        let lock = self.lock_for(&format!("{}#session", conn.id));
        let _one_login_at_a_time = lock.lock().await;
        if let Some(stored) = self.stored(conn).await?
            && let Some(s) = &stored.session
            && usable(s)
        {
            return Ok(s.clone());
        }
        let session = open().await?;
        self.save_session(conn, Some(session.clone())).await?;
        Ok(session)
    }

    /// Stores (or, with `None`, forgets) the connection's device session, on the latest record.
    async fn save_session(
        &self,
        conn: &Connection,
        session: Option<DeviceSession>,
    ) -> Result<TokenRecord, TokenError> {
        for _ in 0..5 {
            let Some(mut record) = self.store.get_token(&conn.id).await? else {
                return Err(TokenError::NotConnected(conn.id.clone()));
            };
            let version = record.version;
            record.session = session.clone();
            match self.write(conn, Some(version), record).await {
                Err(StoreError::Conflict) => continue,
                other => return Ok(other?),
            }
        }
        Err(StoreError::Conflict.into())
    }
}
