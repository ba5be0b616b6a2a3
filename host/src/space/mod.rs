//! Space (空间底座): the city's areas — city → district/county → street/town →
//! community → grid cell (网格) — as polygons, and the questions every other
//! capability asks of them: which grid cell is this point in, which areas hold
//! it, which cells lie near it or inside a warning's polygon.
//!
//! Storage is the `areas` table (GeoJSON geometry as TEXT plus a bounding box).
//! Lookups never touch the database: they run on a [`SpaceIndex`] built from
//! storage at start and rebuilt after every load, published behind a lock held
//! only long enough to clone an `Arc`, so a reload swaps the whole index at once.
//!
//! Codes follow the grid code of the design, 14 digits made of 6 district,
//! 3 street, 3 community and 2 grid digits: a district has 6 digits (GB/T 2260),
//! a street 9, a community 12, a grid 14, each extending its parent's code; the
//! city has a 6-digit GB/T 2260 code of its own (南京 `320100`) whose districts
//! share its prefix (`320102` lies in `320100`).

mod index;
mod load;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use geo::{Polygon, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::bus::GeoPoint;
use crate::db::Db;
use crate::error::ServiceError;

pub use index::{IndexedArea, SpaceIndex};

/// The level of an area in the city's hierarchy, from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The city (市).
    City,
    /// A district or county (区/县).
    District,
    /// A street or town (街道/镇).
    Street,
    /// A community or village (社区/村).
    Community,
    /// A grid cell (网格), the unit a grid worker covers.
    Grid,
}

impl Level {
    /// Every level, from the top.
    pub const ALL: [Level; 5] = [Level::City, Level::District, Level::Street, Level::Community, Level::Grid];

    /// The name used in storage, GeoJSON and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::City => "city",
            Level::District => "district",
            Level::Street => "street",
            Level::Community => "community",
            Level::Grid => "grid",
        }
    }

    /// The level named `name`, if any.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// The level of this level's parent; `None` for the city.
    pub fn parent(self) -> Option<Level> {
        match self {
            Level::City => None,
            Level::District => Some(Level::City),
            Level::Street => Some(Level::District),
            Level::Community => Some(Level::Street),
            Level::Grid => Some(Level::Community),
        }
    }

    /// How many digits a code of this level has.
    pub fn code_len(self) -> usize {
        match self {
            Level::City | Level::District => 6,
            Level::Street => 9,
            Level::Community => 12,
            Level::Grid => 14,
        }
    }

    /// The position of this level from the top (city 0, grid 4).
    pub(crate) fn depth(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An area as lookups return it: who it is, without its shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AreaRef {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// The parent's code; none (`null`) for the city.
    pub parent: Option<String>,
}

/// A grid cell as lookups return it; its `parent` is its community.
pub type GridRef = AreaRef;

/// An area as stored, with its shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Area {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// The parent's code; none (`null`) for the city.
    pub parent: Option<String>,
    /// A GeoJSON Polygon or MultiPolygon (WGS 84, `[lon, lat]`).
    #[schema(value_type = Object)]
    pub geometry: geojson::Geometry,
    /// `[min_lon, min_lat, max_lon, max_lat]`, the GeoJSON bbox order.
    #[schema(min_items = 4, max_items = 4)]
    pub bbox: [f64; 4],
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct LoadReport {
    /// Features in the file.
    pub features: usize,
    /// Areas that were new.
    pub inserted: usize,
    /// Areas that were already stored and are now replaced by the file's version.
    pub updated: usize,
    /// Grid cells in the index after the load.
    pub grids_indexed: usize,
}

/// The space service.
pub struct Space {
    db: Db,
    /// The published index. Readers hold the lock only to clone the `Arc`.
    index: RwLock<Arc<SpaceIndex>>,
    /// Serialises loads and rebuilds, so an older rebuild can never overwrite a
    /// newer one.
    writer: tokio::sync::Mutex<()>,
}

impl Space {
    /// A space service with an empty index; call [`Space::reload_index`] to fill
    /// it from storage (or use [`Space::open`]).
    pub fn new(db: Db) -> Self {
        Space { db, index: RwLock::new(Arc::new(SpaceIndex::default())), writer: tokio::sync::Mutex::new(()) }
    }

    /// [`Space::new`], with the index built from what is stored.
    pub async fn open(db: Db) -> Result<Self, ServiceError> {
        let space = Space::new(db);
        space.reload_index().await?;
        Ok(space)
    }

    /// The current index: a snapshot that later loads do not change.
    pub fn index(&self) -> Arc<SpaceIndex> {
        self.index.read().clone()
    }

    /// Validate a GeoJSON FeatureCollection of areas and store it in one
    /// transaction (areas already stored under the same code are replaced), then
    /// rebuild the index. On any error nothing is written; the error names the
    /// feature (index and code) and the field.
    pub async fn load_geojson(&self, text: &str) -> Result<LoadReport, ServiceError> {
        let features = load::parse(text)?;
        let _writer = self.writer.lock().await;
        let mut tx = self.db.begin_write().await?;
        let rows = sqlx::query("SELECT code, level FROM areas").fetch_all(&mut *tx).await?;
        let mut stored = HashMap::with_capacity(rows.len());
        for r in &rows {
            let code: String = r.try_get(0)?;
            let level: String = r.try_get(1)?;
            let level = stored_level(&code, &level)?;
            stored.insert(code, level);
        }
        load::check_hierarchy(&features, &stored)?;

        // Parents before children, so the foreign key holds after every statement.
        let mut order: Vec<&load::Feature> = features.iter().collect();
        order.sort_by_key(|f| (f.level, f.index));
        let mut inserted = 0;
        for f in order {
            sqlx::query(
                "INSERT INTO areas (code, name, level, parent, geometry, min_lon, min_lat, max_lon, max_lat) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, \
                 parent = excluded.parent, geometry = excluded.geometry, min_lon = excluded.min_lon, \
                 min_lat = excluded.min_lat, max_lon = excluded.max_lon, max_lat = excluded.max_lat",
            )
            .bind(&f.code)
            .bind(&f.name)
            .bind(f.level.as_str())
            .bind(f.parent.as_deref())
            .bind(&f.geometry_json)
            .bind(f.bbox[0])
            .bind(f.bbox[1])
            .bind(f.bbox[2])
            .bind(f.bbox[3])
            .execute(&mut *tx)
            .await?;
            // The area is also the org unit of the same code, which roles are held in
            // and records are scoped to.
            sqlx::query(
                "INSERT INTO org_units (code, name, level, parent) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, \
                 parent = excluded.parent",
            )
            .bind(&f.code)
            .bind(&f.name)
            .bind(f.level.as_str())
            .bind(f.parent.as_deref())
            .execute(&mut *tx)
            .await?;
            if !stored.contains_key(&f.code) {
                inserted += 1;
            }
        }
        tx.commit().await?;

        let grids_indexed = self.rebuild().await.map_err(|e| {
            ServiceError::Storage(anyhow::anyhow!("the areas were stored, but rebuilding the index failed: {e}"))
        })?;
        Ok(LoadReport { features: features.len(), inserted, updated: features.len() - inserted, grids_indexed })
    }

    /// Rebuild the index from storage and swap it in.
    pub async fn reload_index(&self) -> Result<(), ServiceError> {
        let _writer = self.writer.lock().await;
        self.rebuild().await.map(|_| ())
    }

    /// Build and publish the index; the caller holds `writer`. Returns the number
    /// of grid cells indexed.
    async fn rebuild(&self) -> Result<usize, ServiceError> {
        let rows =
            sqlx::query("SELECT code, name, level, parent, geometry FROM areas").fetch_all(self.db.pool()).await?;
        let mut areas = Vec::with_capacity(rows.len());
        for r in &rows {
            let code: String = r.try_get(0)?;
            let level: String = r.try_get(2)?;
            let level = stored_level(&code, &level)?;
            let geometry: String = r.try_get(4)?;
            let shape = load::shape_from_json(&geometry).map_err(|e| {
                ServiceError::Storage(anyhow::anyhow!("area `{code}`: the stored geometry is unusable: {e}"))
            })?;
            areas
                .push(IndexedArea { area: AreaRef { code, name: r.try_get(1)?, level, parent: r.try_get(3)? }, shape });
        }
        // Building is CPU work proportional to the city; keep it off the async workers.
        let index = tokio::task::spawn_blocking(move || SpaceIndex::new(areas))
            .await
            .map_err(|e| ServiceError::Storage(anyhow::anyhow!("building the space index failed: {e}")))?;
        let grids = index.len_at(Level::Grid);
        *self.index.write() = Arc::new(index);
        Ok(grids)
    }

    /// The grid cell holding `point`. A point on an edge or corner shared by
    /// several cells resolves to the one with the smallest code; a point outside
    /// every cell (or not on Earth) has none.
    pub fn grid_at(&self, point: GeoPoint) -> Option<GridRef> {
        self.index().grid_at(point).cloned()
    }

    /// The areas holding `point`, from the most specific up to the city: the
    /// deepest area found (normally a grid cell), then its parents.
    pub fn areas_at(&self, point: GeoPoint) -> Vec<AreaRef> {
        self.index().areas_at(point).into_iter().cloned().collect()
    }

    /// The grid cells within `metres` (great-circle distance) of `centre`: every
    /// cell whose polygon reaches into the circle. Sorted by code.
    pub fn grids_within_radius(&self, centre: GeoPoint, metres: f64) -> Result<Vec<GridRef>, ServiceError> {
        let centre = centre.validate().map_err(|e| ServiceError::Invalid(format!("centre: {e}")))?;
        if !(metres.is_finite() && (0.0..=MAX_RADIUS_METRES).contains(&metres)) {
            return Err(ServiceError::Invalid(format!("radius: {metres} m is outside 0..={MAX_RADIUS_METRES}")));
        }
        Ok(self.index().grids_within_radius(centre, metres).into_iter().cloned().collect())
    }

    /// The grid cells whose interior overlaps `polygon` (`x` = longitude,
    /// `y` = latitude); cells that only touch its boundary are left out. Sorted
    /// by code.
    pub fn grids_within_polygon(&self, polygon: &Polygon<f64>) -> Result<Vec<GridRef>, ServiceError> {
        check_query_polygon(polygon)?;
        Ok(self.index().grids_within_polygon(polygon).into_iter().cloned().collect())
    }

    /// One stored area, with its geometry.
    pub async fn area(&self, code: &str) -> Result<Option<Area>, ServiceError> {
        let row = sqlx::query(
            "SELECT code, name, level, parent, geometry, min_lon, min_lat, max_lon, max_lat FROM areas WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let code: String = r.try_get(0)?;
        let level: String = r.try_get(2)?;
        let level = stored_level(&code, &level)?;
        let geometry: String = r.try_get(4)?;
        let geometry = serde_json::from_str(&geometry).map_err(|e| {
            ServiceError::Storage(anyhow::anyhow!("area `{code}`: the stored geometry is not GeoJSON: {e}"))
        })?;
        Ok(Some(Area {
            name: r.try_get(1)?,
            level,
            parent: r.try_get(3)?,
            geometry,
            bbox: [r.try_get(5)?, r.try_get(6)?, r.try_get(7)?, r.try_get(8)?],
            code,
        }))
    }
}

/// The largest radius a query may ask for: a city is far smaller.
pub const MAX_RADIUS_METRES: f64 = 1_000_000.0;

/// A query polygon from a ring of points, as a CAP `polygon` gives them; the
/// ring is closed if it is not already.
pub fn polygon_from_ring(ring: &[GeoPoint]) -> Result<Polygon<f64>, ServiceError> {
    for (i, p) in ring.iter().enumerate() {
        p.validate().map_err(|e| ServiceError::Invalid(format!("polygon: point {i}: {e}")))?;
    }
    // `Polygon::new` closes the ring.
    let polygon = Polygon::new(ring.iter().map(|p| (p.lon, p.lat)).collect::<Vec<_>>().into(), Vec::new());
    check_query_polygon(&polygon)?;
    Ok(polygon)
}

fn check_query_polygon(polygon: &Polygon<f64>) -> Result<(), ServiceError> {
    for c in polygon.exterior().coords().chain(polygon.interiors().iter().flat_map(|r| r.coords())) {
        GeoPoint { lat: c.y, lon: c.x }.validate().map_err(|e| ServiceError::Invalid(format!("polygon: {e}")))?;
    }
    polygon.check_validation().map_err(|e| ServiceError::Invalid(format!("polygon: {e}")))
}

/// A stored level, or a storage error: the table only ever receives valid ones.
fn stored_level(code: &str, level: &str) -> Result<Level, ServiceError> {
    Level::parse(level)
        .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("area `{code}`: unknown stored level `{level}`")))
}
