//! `yiwang:gov/data` for plugins: every call checks the plugin's grant first and
//! the data set's sharing level second, so a grant cannot widen what a data set's
//! owner shares.

use yiwang_wit::grants::DataAccess;

use std::sync::Arc;

use crate::data::{Data, RecordQuery, Writer};
use crate::identity::Scope;
use crate::runtime::bindings::yiwang::gov::data::{FieldFilter, Host, Reading, Record};
use crate::runtime::bindings::yiwang::gov::types::{Error, Timestamp};
use crate::runtime::state::Call;

/// What `yiwang:gov/data` reaches: the data foundation alone (data sets,
/// records, sensors and readings).
pub struct DataView {
    pub data: Arc<Data>,
}

enum Access {
    Read,
    Write,
}

impl Call<'_, DataView> {
    /// Check grant and sharing for `dataset`; `Err` is the error to return.
    async fn check_dataset(&mut self, action: &str, dataset: &str, access: Access) -> Result<(), Error> {
        let grant_access = match access {
            Access::Read => DataAccess::Read,
            Access::Write => DataAccess::Write,
        };
        self.ctx.authorize(self.ctx.grants().check_dataset(grant_access, action, dataset)).await?;
        let header = match self.view.data.dataset(dataset).await {
            Ok(Some(h)) => h,
            Ok(None) => return Err(Error::NotFound(format!("no data set `{dataset}`"))),
            Err(e) => return Err(self.ctx.service_error(action, e)),
        };
        let department = self.ctx.plugin.manifest.department.clone();
        let allowed = match access {
            Access::Read => header.readable_by(&department),
            Access::Write => header.writable_by(&department),
        };
        match allowed {
            true => Ok(()),
            false => {
                let why = format!("data set is owned by `{}` and not shared with `{department}` for this", header.owner_department);
                Err(self.ctx.deny(action, dataset, &why).await)
            }
        }
    }
}

impl Host for Call<'_, DataView> {
    async fn get(&mut self, dataset: String, key: String) -> Result<Option<Record>, Error> {
        self.check_dataset("data.get", &dataset, Access::Read).await?;
        match self.view.data.get(&dataset, &key).await {
            Ok(r) => Ok(r.map(|r| Record { key: r.key, value: r.value, updated: r.updated })),
            Err(e) => Err(self.ctx.service_error("data.get", e)),
        }
    }

    async fn query(
        &mut self,
        dataset: String,
        filters: Vec<FieldFilter>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Record>, Error> {
        self.check_dataset("data.query", &dataset, Access::Read).await?;
        let mut parsed = Vec::with_capacity(filters.len());
        for f in filters {
            match serde_json::from_str::<serde_json::Value>(&f.value) {
                Ok(v) => parsed.push((f.field, v)),
                Err(e) => return Err(Error::Invalid(format!("filter `{}`: value is not JSON: {e}", f.field))),
            }
        }
        // A plugin acts for its department, which is not tied to one area.
        let q = RecordQuery { filters: parsed, area: None, scope: Scope::All, offset, limit };
        match self.view.data.query(&dataset, &q).await {
            Ok(page) => {
                Ok(page.records.into_iter().map(|r| Record { key: r.key, value: r.value, updated: r.updated }).collect())
            }
            Err(e) => Err(self.ctx.service_error("data.query", e)),
        }
    }

    async fn put(&mut self, dataset: String, key: String, value: String) -> Result<(), Error> {
        self.check_dataset("data.put", &dataset, Access::Write).await?;
        let actor = self.ctx.plugin.principal.clone();
        let writer = Writer { actor: &actor, scope: &Scope::All };
        match self.view.data.put(&dataset, &key, &value, writer).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.ctx.service_error("data.put", e)),
        }
    }

    async fn readings(&mut self, sensor: String, from: Timestamp, to: Timestamp) -> Result<Vec<Reading>, Error> {
        let header = match self.view.data.sensor(&sensor).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                // Say "denied" rather than "not found" to a plugin with no sensor grant
                // at all, so that it cannot probe which sensors exist.
                self.ctx.authorize(self.ctx.grants().check_readings(&sensor, None)).await?;
                return Err(Error::NotFound(format!("no sensor `{sensor}`")));
            }
            Err(e) => return Err(self.ctx.service_error("data.readings", e)),
        };
        self.ctx.authorize(self.ctx.grants().check_readings(&sensor, Some(&header.kind))).await?;
        match self.view.data.readings(&sensor, from, to).await {
            Ok(rows) => Ok(rows
                .into_iter()
                .map(|r| Reading { sensor: sensor.clone(), time: r.time, value: r.value, unit: header.unit.clone() })
                .collect()),
            Err(e) => Err(self.ctx.service_error("data.readings", e)),
        }
    }
}
