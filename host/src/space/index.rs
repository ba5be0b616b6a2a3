//! The in-memory spatial index: one R-tree of bounding boxes per level, whose
//! candidates are then tested exactly against their polygons with `geo`.
//!
//! Coordinates are WGS 84 degrees with `x` = longitude and `y` = latitude, as in
//! GeoJSON. The index is immutable once built; [`super::Space`] replaces it whole.

use std::collections::HashMap;

use geo::coordinate_position::CoordPos;
use geo::{
    BoundingRect, Closest, Coord, CoordinatePosition, Distance, Haversine, HaversineClosestPoint, Intersects,
    MultiPolygon, Point, Polygon, Relate,
};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use super::{AreaRef, Level};
use crate::bus::GeoPoint;

/// An area and its shape, as the index takes them.
#[derive(Debug, Clone)]
pub struct IndexedArea {
    pub area: AreaRef,
    pub shape: MultiPolygon<f64>,
}

/// A bounding box in the tree, pointing at its area in `SpaceIndex::areas`.
type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Areas by level, for point, radius and polygon queries.
#[derive(Debug, Default)]
pub struct SpaceIndex {
    areas: Vec<IndexedArea>,
    by_code: HashMap<String, u32>,
    /// One tree per level, in [`Level::depth`] order.
    trees: [RTree<Entry>; 5],
}

impl SpaceIndex {
    /// Build the index. Codes are expected to be unique (storage guarantees it);
    /// for a repeated code the last area wins. An area with an empty shape is
    /// known by code but found by no spatial query.
    pub fn new(areas: Vec<IndexedArea>) -> Self {
        let mut entries: [Vec<Entry>; 5] = Default::default();
        let mut by_code = HashMap::with_capacity(areas.len());
        let mut kept: Vec<IndexedArea> = Vec::with_capacity(areas.len());
        for a in areas {
            if let Some(&i) = by_code.get(&a.area.code) {
                kept[i as usize] = a;
                continue;
            }
            let i = u32::try_from(kept.len()).expect("fewer than 2^32 areas");
            by_code.insert(a.area.code.clone(), i);
            kept.push(a);
        }
        for (i, a) in kept.iter().enumerate() {
            if let Some(r) = a.shape.bounding_rect() {
                let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                entries[a.area.level.depth()].push(GeomWithData::new(rect, i as u32));
            }
        }
        let trees = entries.map(RTree::bulk_load);
        SpaceIndex { areas: kept, by_code, trees }
    }

    /// How many areas the index holds.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    /// Whether the index holds no area.
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// How many areas of `level` the spatial queries can find.
    pub fn len_at(&self, level: Level) -> usize {
        self.trees[level.depth()].size()
    }

    /// The area with this code.
    pub fn area(&self, code: &str) -> Option<&AreaRef> {
        self.by_code.get(code).map(|&i| &self.areas[i as usize].area)
    }

    /// The shape of the area with this code.
    pub fn shape(&self, code: &str) -> Option<&MultiPolygon<f64>> {
        self.by_code.get(code).map(|&i| &self.areas[i as usize].shape)
    }

    /// The area with this code followed by its parents up to the top.
    pub fn chain(&self, code: &str) -> Vec<&AreaRef> {
        let mut chain = Vec::with_capacity(5);
        let mut next = self.area(code);
        while let Some(a) = next {
            chain.push(a);
            // Levels strictly rise along the chain, so it is at most five long
            // even if stored parents were ever to form a loop.
            next = a.parent.as_deref().and_then(|p| self.area(p)).filter(|p| p.level < a.level);
        }
        chain
    }

    /// The grid cell holding `point`; see [`super::Space::grid_at`].
    pub fn grid_at(&self, point: GeoPoint) -> Option<&AreaRef> {
        self.locate(Level::Grid, point).map(|i| &self.areas[i].area)
    }

    /// The area of `level` holding `point`, with the same tie-breaking as
    /// [`SpaceIndex::grid_at`].
    pub fn area_at(&self, level: Level, point: GeoPoint) -> Option<&AreaRef> {
        self.locate(level, point).map(|i| &self.areas[i].area)
    }

    /// The deepest area holding `point` and its parents; see
    /// [`super::Space::areas_at`].
    pub fn areas_at(&self, point: GeoPoint) -> Vec<&AreaRef> {
        Level::ALL
            .iter()
            .rev()
            .find_map(|&level| self.locate(level, point))
            .map(|i| self.chain(&self.areas[i].area.code))
            .unwrap_or_default()
    }

    /// The index in `areas` of the area of `level` holding `point`. Inside beats
    /// on the boundary; between equals the smallest code wins, so a point on a
    /// shared edge always resolves to the same cell.
    fn locate(&self, level: Level, point: GeoPoint) -> Option<usize> {
        if point.validate().is_err() {
            return None;
        }
        let coord = Coord { x: point.lon, y: point.lat };
        let mut best: Option<(bool, usize)> = None;
        for entry in self.trees[level.depth()].locate_all_at_point(&[coord.x, coord.y]) {
            let i = entry.data as usize;
            let inside = match self.areas[i].shape.coordinate_position(&coord) {
                CoordPos::Inside => true,
                CoordPos::OnBoundary => false,
                CoordPos::Outside => continue,
            };
            let better = match best {
                None => true,
                Some((best_inside, b)) => {
                    (inside && !best_inside)
                        || (inside == best_inside && self.areas[i].area.code < self.areas[b].area.code)
                }
            };
            if better {
                best = Some((inside, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// The grid cells within `metres` of `centre` along the sphere; see
    /// [`super::Space::grids_within_radius`]. An invalid centre or radius finds
    /// nothing.
    pub fn grids_within_radius(&self, centre: GeoPoint, metres: f64) -> Vec<&AreaRef> {
        if centre.validate().is_err() || !(metres.is_finite() && metres >= 0.0) {
            return Vec::new();
        }
        let from = Point::new(centre.lon, centre.lat);
        let envelope = circle_envelope(from, metres);
        let mut found: Vec<&AreaRef> = self.trees[Level::Grid.depth()]
            .locate_in_envelope_intersecting(&envelope)
            .map(|e| &self.areas[e.data as usize])
            .filter(|a| match a.shape.haversine_closest_point(&from) {
                Closest::Intersection(_) => true,
                Closest::SinglePoint(p) => Haversine.distance(from, p) <= metres,
                Closest::Indeterminate => false,
            })
            .map(|a| &a.area)
            .collect();
        found.sort_by(|a, b| a.code.cmp(&b.code));
        found
    }

    /// The grid cells whose interior overlaps `polygon`; see
    /// [`super::Space::grids_within_polygon`].
    pub fn grids_within_polygon(&self, polygon: &Polygon<f64>) -> Vec<&AreaRef> {
        let Some(r) = polygon.bounding_rect() else { return Vec::new() };
        let envelope = AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
        let mut found: Vec<&AreaRef> = self.trees[Level::Grid.depth()]
            .locate_in_envelope_intersecting(&envelope)
            .map(|e| &self.areas[e.data as usize])
            // The cheap test first; the full relation only for cells that meet it.
            .filter(|a| a.shape.intersects(polygon) && !a.shape.relate(polygon).is_touches())
            .map(|a| &a.area)
            .collect();
        found.sort_by(|a, b| a.code.cmp(&b.code));
        found
    }
}

/// A longitude/latitude box holding every point within `metres` of `centre` on
/// the sphere `Haversine` measures on. The latitude span is exact; the
/// longitude span is the widest the circle reaches (at a latitude nearer the
/// pole than the centre's). Near a pole or across the antimeridian the box
/// widens to every longitude, which is correct and merely slower.
fn circle_envelope(centre: Point<f64>, metres: f64) -> AABB<[f64; 2]> {
    // A hair of slack so rounding never drops a cell that just touches the circle.
    let angle = metres / Haversine.radius() * (1.0 + 1e-9) + 1e-12;
    let (lon, lat) = (centre.x(), centre.y());
    let dlat = angle.to_degrees();
    let (min_lat, max_lat) = (lat - dlat, lat + dlat);
    let (min_lon, max_lon) = if min_lat <= -90.0 || max_lat >= 90.0 {
        (-180.0, 180.0)
    } else {
        let dlon = (angle.sin() / lat.to_radians().cos()).min(1.0).asin().to_degrees();
        if lon - dlon < -180.0 || lon + dlon > 180.0 { (-180.0, 180.0) } else { (lon - dlon, lon + dlon) }
    };
    AABB::from_corners([min_lon, min_lat.max(-90.0)], [max_lon, max_lat.min(90.0)])
}
