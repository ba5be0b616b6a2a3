//! A day in the city (`yiwang demo`): seed the demonstration city, then replay
//! one day of citizen reports, hotline calls, grid patrols, dispatchers' work
//! and sensor streams — a flood in the afternoon, a gas leak at noon and a
//! hazmat vehicle leaving its route in the morning — through the real intake,
//! the real case engine and the bundled plugins, and say what happened.
//!
//! The services' clock is a [`ReplayClock`]: it stands at each moment of the
//! script while it is replayed, so deadlines, warnings and the plugins' days
//! and weeks are those of the replayed day. After each step the replay waits
//! until every plugin has handled every event ([`Runtime::settle`]), so what a
//! plugin did (a route suggestion, a warning, a case) is there for the next
//! step, just as a dispatcher would see it a moment later.

pub mod city;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Row;
use tokio::sync::mpsc;

use crate::bus::{Event, GeoPoint};
use crate::cases::engine::{Caller, Channel, Move, NewReport, Who};
use crate::cases::lifecycle::Action;
use crate::clock::{Clock, ReplayClock};
use crate::data::iot::NewReading;
use crate::runtime::Runtime;
use crate::services::Services;
use crate::calendar::{civil_from_days, days_from_civil};
use crate::ticks;

const MINUTE: i64 = 60_000;
/// The photo of a 随手拍 report: an 8×8 PNG.
pub const PHOTO: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x4b, 0x6d, 0x29, 0xdc, 0x00, 0x00, 0x00, 0x11, 0x49, 0x44, 0x41,
    0x54, 0x78, 0x9c, 0x63, 0xf0, 0x9a, 0x10, 0x83, 0x15, 0x31, 0x0c, 0x2d, 0x09, 0x00, 0x44, 0x0a, 0x4d, 0x81, 0xf8, 0x10,
    0x3d, 0x8c, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
const HOUR: i64 = 60 * MINUTE;

/// The local day (UTC+8) a replay covers: its date and first millisecond.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: String,
    pub start: i64,
}

impl Day {
    /// The local day before the one holding `now`.
    pub fn before(now: i64) -> Day {
        let today = (now + ticks::UTC_OFFSET_MS).div_euclid(86_400_000);
        Day::numbered(today - 1)
    }

    fn numbered(day: i64) -> Day {
        let (y, m, d) = civil_from_days(day);
        Day { date: format!("{y:04}-{m:02}-{d:02}"), start: day * 86_400_000 - ticks::UTC_OFFSET_MS }
    }

    /// A day written `YYYY-MM-DD`.
    pub fn parse(text: &str) -> anyhow::Result<Day> {
        let parts: Vec<&str> = text.split('-').collect();
        let [y, m, d] = parts[..] else { bail!("`{text}` is not a date (YYYY-MM-DD)") };
        let (y, m, d): (i64, i64, i64) = (y.parse()?, m.parse()?, d.parse()?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            bail!("`{text}` is not a date (YYYY-MM-DD)");
        }
        let day = days_from_civil(y, m, d);
        let out = Day::numbered(day);
        if out.date != text {
            bail!("`{text}` is not a date (YYYY-MM-DD)");
        }
        Ok(out)
    }

    /// The instant `h:m` local time on this day.
    pub fn at(&self, h: i64, m: i64) -> i64 {
        self.start + h * HOUR + m * MINUTE
    }
}


/// What the replayed day came to.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub date: String,
    /// Reports by channel.
    pub reports: BTreeMap<String, i64>,
    pub cases_opened: i64,
    /// Reports that joined an open case rather than opening one.
    pub merged: i64,
    pub dispatched: i64,
    pub escalated: i64,
    pub closed: i64,
    pub overdue: i64,
    pub open: i64,
    /// Warnings by CAP category, and how many of them were Severe or Extreme.
    pub warnings: BTreeMap<String, (i64, i64)>,
    /// Emergency cases the warnings led to: (ticket, title).
    pub warning_cases: Vec<(String, String)>,
    /// Flood warnings fanned out to communities: community count of the widest.
    pub flood_communities: usize,
    /// Supervision cases for 假性整改: (ticket, title).
    pub false_rectification: Vec<(String, String)>,
    /// What the plugins announced, by topic.
    pub plugin_events: BTreeMap<String, i64>,
    /// Cases per department: (opened, closed, closure rate).
    pub departments: Vec<(String, i64, i64, Option<f64>)>,
    /// Plugin calls and failed calls (error values, traps, limits), by plugin.
    pub plugins: Vec<(String, u64, u64)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "一网统管 · {} 城市运行日回放 (UTC+8)", self.date)?;
        let reports: Vec<String> = self.reports.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(f, "  reports      {} ({})", self.reports.values().sum::<i64>(), reports.join(", "))?;
        writeln!(
            f,
            "  cases        {} opened, {} reports merged into open cases, {} dispatched, {} escalated or called in, {} closed, {} overdue, {} still open",
            self.cases_opened, self.merged, self.dispatched, self.escalated, self.closed, self.overdue, self.open
        )?;
        let warnings: Vec<String> =
            self.warnings.iter().map(|(c, (n, severe))| format!("{c} {n} ({severe} severe)")).collect();
        writeln!(f, "  warnings     {} ({})", self.warnings.values().map(|w| w.0).sum::<i64>(), warnings.join(", "))?;
        writeln!(f, "  warning → case ({}):", self.warning_cases.len())?;
        for (ticket, title) in &self.warning_cases {
            writeln!(f, "    {ticket}  {title}")?;
        }
        writeln!(f, "  flood warning fanned out to {} communities", self.flood_communities)?;
        writeln!(f, "  假性整改 supervision cases ({}):", self.false_rectification.len())?;
        for (ticket, title) in &self.false_rectification {
            writeln!(f, "    {ticket}  {title}")?;
        }
        let events: Vec<String> = self.plugin_events.iter().map(|(t, n)| format!("{t} {n}")).collect();
        writeln!(f, "  plugin events  {}", events.join(", "))?;
        writeln!(f, "  departments  (cases opened / closed / 结案率)")?;
        for (d, opened, closed, rate) in &self.departments {
            let rate = rate.map_or("—".to_owned(), |r| format!("{:.0}%", r * 100.0));
            writeln!(f, "    {d:<14} {opened:>3} / {closed:>3} / {rate}")?;
        }
        let plugins: Vec<String> = self.plugins.iter().map(|(p, calls, failed)| format!("{p} {calls} calls ({failed} failed)")).collect();
        write!(f, "  plugins      {}", plugins.join(", "))
    }
}

/// A report as the script files it: who, through which channel, what and where.
struct Filed<'a> {
    channel: Channel,
    reporter: &'a str,
    category: &'a str,
    description: &'a str,
    at: GeoPoint,
    address: Option<&'a str>,
    /// A hotline caller's name and phone.
    caller: Option<(&'a str, &'a str)>,
}

impl<'a> Filed<'a> {
    fn new(channel: Channel, reporter: &'a str, category: &'a str, description: &'a str, at: GeoPoint) -> Self {
        Filed { channel, reporter, category, description, at, address: None, caller: None }
    }

    /// A call the hotline's operator enters.
    fn hotline(caller: (&'a str, &'a str), category: &'a str, description: &'a str, at: GeoPoint) -> Self {
        Filed { caller: Some(caller), ..Filed::new(Channel::Hotline, "hotline12345-handler", category, description, at) }
    }

    fn address(self, address: &'a str) -> Self {
        Filed { address: Some(address), ..self }
    }
}

/// The replay: the services, the runtime and the clock it drives.
pub struct Replay<'a> {
    services: &'a Arc<Services>,
    runtime: &'a Arc<Runtime>,
    clock: &'a ReplayClock,
    day: Day,
    /// Cases by the script's name for them.
    named: BTreeMap<&'static str, String>,
    /// Sensor readings not yet taken in, by time.
    pending: BTreeMap<i64, Vec<NewReading>>,
}

impl<'a> Replay<'a> {
    pub fn new(services: &'a Arc<Services>, runtime: &'a Arc<Runtime>, clock: &'a ReplayClock, day: Day) -> Self {
        Replay { services, runtime, clock, day, named: BTreeMap::new(), pending: BTreeMap::new() }
    }

    /// Move the clock to `h:m` of the day, taking in on the way every sensor
    /// reading due by then, each at its own time.
    async fn at(&mut self, h: i64, m: i64) -> anyhow::Result<()> {
        let target = self.day.at(h, m);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > target {
                break;
            }
            let (time, batch) = entry.remove_entry();
            self.clock.set(time);
            self.readings(batch).await?;
        }
        self.clock.set(target);
        Ok(())
    }

    /// Wait for the plugins to handle everything published so far.
    async fn settle(&self) -> anyhow::Result<()> {
        if !self.runtime.settle(Duration::from_secs(60)).await {
            bail!("the plugins did not catch up within a minute");
        }
        Ok(())
    }

    /// File a report through the intake; the script may name its case.
    async fn report(&mut self, name: Option<&'static str>, f: Filed<'_>) -> anyhow::Result<String> {
        // A resident's 随手拍 comes with its photo.
        let mut evidence = Vec::new();
        if f.channel == Channel::Snapshot {
            let upload = crate::media::Upload { content_type: "image/png", filename: Some("随手拍.png"), uploaded_by: f.reporter };
            let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(PHOTO))]);
            evidence.push(self.services.media.store(&upload, body).await?.info().sha256.clone());
        }
        let report = NewReport {
            channel: f.channel,
            idempotency_key: None,
            category_code: f.category.into(),
            title: None,
            description: f.description.into(),
            location: Some(f.at),
            address: f.address.map(Into::into),
            evidence,
            caller: f.caller.map(|(n, p)| Caller { name: n.into(), phone: p.into() }),
        };
        let intake =
            self.services.cases.intake(&report, Some(f.reporter)).await.with_context(|| format!("report `{}`", f.description))?;
        if let Some(name) = name {
            self.named.insert(name, intake.case.clone());
        }
        self.settle().await?;
        Ok(intake.case)
    }

    async fn act(&self, user: &str, case: &str, action: Action, reason: &str, department: Option<&str>, suggestion: Option<String>) -> anyhow::Result<()> {
        let p = self.services.identity.principal(user).await?.with_context(|| format!("no demo user `{user}`"))?;
        let scope = self.services.identity.scope(&p).await?;
        let mv = Move {
            action,
            reason: reason.into(),
            department: department.map(Into::into),
            extension_hours: None,
            into: None,
            suggestion,
        };
        self.services
            .cases
            .transition(case, &mv, Who::Person { actor: &p, scope: &scope })
            .await
            .with_context(|| format!("{user}: {} case {case}", action.name()))?;
        self.settle().await
    }

    /// The dispatcher's round: every case still reported is accepted,
    /// registered and dispatched, to the best pending plugin suggestion when
    /// there is one, else where the routing rules send it.
    async fn dispatch_round(&self) -> anyhow::Result<usize> {
        let rows = sqlx::query("SELECT id FROM cases WHERE status = 'reported' ORDER BY created, id")
            .fetch_all(self.services.db.pool())
            .await?;
        let mut n = 0;
        for r in rows {
            let id: String = r.try_get(0)?;
            self.act("dispatcher", &id, Action::Accept, "", None, None).await?;
            self.act("dispatcher", &id, Action::Register, "", None, None).await?;
            let view = self.services.cases.view(&id).await?.context("a case just registered")?;
            let best = view
                .suggestions
                .iter()
                .filter(|s| s.outcome == crate::cases::suggest::SuggestionOutcome::Pending)
                .max_by(|a, b| a.score.total_cmp(&b.score));
            match best {
                Some(s) => self.act("dispatcher", &id, Action::Dispatch, "", None, Some(s.id.clone())).await?,
                None => {
                    let department = match view.route.as_ref() {
                        Some(route) => route.department.clone(),
                        None => self.category_department(&view.category_code).await?,
                    };
                    self.act("dispatcher", &id, Action::Dispatch, "", Some(&department), None).await?
                }
            }
            n += 1;
        }
        Ok(n)
    }

    async fn category_department(&self, code: &str) -> anyhow::Result<String> {
        let row = sqlx::query("SELECT department FROM categories WHERE code = $1").bind(code).fetch_optional(self.services.db.pool()).await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()).unwrap_or_else(|| "command-center".into()))
    }

    /// Work a dispatched case through to its close: the department's handler
    /// starts and disposes of it, the dispatcher sends it to be checked, a
    /// checker passes it and the dispatcher closes it.
    async fn work_through(&self, case: &str, handler: &str) -> anyhow::Result<()> {
        self.act(handler, case, Action::Start, "", None, None).await?;
        self.act(handler, case, Action::Dispose, "已现场处置完毕", None, None).await?;
        self.act("dispatcher", case, Action::SendToCheck, "", None, None).await?;
        self.act("checker", case, Action::PassCheck, "", None, None).await?;
        self.act("dispatcher", case, Action::Close, "", None, None).await
    }

    /// Readings, stored and announced, then handled by the plugins.
    async fn readings(&self, readings: Vec<NewReading>) -> anyhow::Result<()> {
        let data = &self.services.data;
        let committed = data.commit_readings(data.prepare_readings(&readings).await?).await?;
        data.announce_readings(self.services.bus.clone(), "host:demo".into(), committed).await.await?;
        self.settle().await
    }

    fn case(&self, name: &str) -> anyhow::Result<String> {
        self.named.get(name).cloned().with_context(|| format!("the script's case `{name}` was not opened"))
    }

    /// The day's sensor streams, by reading time: the hazmat vehicle's fixes,
    /// the gas leak, the bins, the rain and the flooding underpass.
    fn sensor_streams(&self) -> BTreeMap<i64, Vec<NewReading>> {
        let mut out: BTreeMap<i64, Vec<NewReading>> = BTreeMap::new();
        let mut put = |time: i64, r: NewReading| out.entry(time).or_default().push(r);

        // 09:00-09:45 the hazmat vehicle: east along its route, then north off
        // the corridor into 老城区, where it stands for twenty minutes.
        let mut t = self.day.at(9, 0);
        let (mut lat, mut lon) = (32.005, 118.705);
        let mut fix = |t: &mut i64, lat: f64, lon: f64| {
            put(*t, NewReading::at("gps-a-d1234", *t, 90.0, GeoPoint { lat, lon }));
            *t += MINUTE;
        };
        while lon < 118.770 {
            fix(&mut t, lat, lon);
            lon += 0.0065;
        }
        while lat < 32.056 {
            fix(&mut t, lat, lon);
            lat += 0.006;
        }
        for _ in 0..20 {
            fix(&mut t, 32.0562, 118.7702);
        }

        // 11:30-12:40 a gas leak in a restaurant street, in %LEL every two minutes.
        for i in 0..36 {
            let minute = 11 * 60 + 30 + i * 2;
            let v = match minute - (12 * 60 + 6) {
                ..0 => 1.0 + (i % 3) as f64 * 0.5,
                0..=2 => 6.0,
                3..=4 => 12.0,
                5..=6 => 19.0,
                7..=14 => 28.0,
                _ => 3.0,
            };
            let time = self.day.start + minute * MINUTE;
            put(time, NewReading::new("gas-hunan-01", time, v));
        }

        // The bins fill through the day, one of them fast.
        for h in 6..=20 {
            let time = self.day.at(h, 5);
            let hours = (h - 6) as f64;
            for (sensor, v) in [("bin-01", 10.0 + 4.0 * hours), ("bin-02", 20.0 + 6.0 * hours), ("bin-03", 5.0 + 3.0 * hours), ("bin-04", 30.0 + 1.5 * hours)] {
                put(time, NewReading::new(sensor, time, v.min(100.0)));
            }
        }

        // 13:00-18:00 a rainstorm, and the underpass floods: level in metres
        // every five minutes, rising from 14:00, peaking at 4.4 m at 16:40.
        for (i, mm) in [2.0, 8.0, 25.0, 48.0, 62.0, 55.0, 40.0, 22.0, 10.0, 4.0, 1.0].into_iter().enumerate() {
            let time = self.day.at(13, 0) + i as i64 * 30 * MINUTE;
            put(time, NewReading::new("rain-qinhuai-01", time, mm));
        }
        for i in 0..=60 {
            let minute = 13 * 60 + i * 5;
            let m = (minute - 14 * 60) as f64;
            let level = match minute {
                ..840 => 1.2,
                840..1000 => 1.2 + 3.2 * (m / 160.0).powi(2),
                _ => (4.4 - (m - 160.0) * 0.012).max(1.5),
            };
            let time = self.day.start + minute * MINUTE;
            put(time, NewReading::new("wl-underpass-01", time, (level * 100.0).round() / 100.0));
        }
        out
    }

    /// Replay the day and the following midnight.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        let l = &city::layout();
        let grid = |i: usize| l.grids[i].clone();
        self.pending = self.sensor_streams();
        self.clock.set(self.day.at(6, 0));
        // The calendar ticks start counting from the replayed morning.
        ticks::publish_due(&self.services.db, &*self.services.bus, self.clock.now_ms()).await?;

        // 07:30 a resident photographs garbage at 中山路 88 号; a neighbour
        // sends the same heap ten minutes later, which joins the first case.
        let garbage_at = grid(2).at(0.5, 0.5);
        self.at(7, 30).await?;
        self.report(Some("garbage"), Filed::new(Channel::Snapshot, "resident-wang", "020101", "中山路88号小区门口垃圾堆放多日，无人清运，气味很大", garbage_at).address("中山路88号")).await?;
        self.at(7, 40).await?;
        let near = GeoPoint { lat: garbage_at.lat + 0.0001, lon: garbage_at.lon + 0.0001 };
        self.report(None, Filed::new(Channel::Snapshot, "resident-zhou", "020101", "中山路88号门口垃圾堆放，没人清运", near).address("中山路 88 号")).await?;

        // From 08:00 street vending is reported again and again in one grid
        // of 湖南路社区 (six times by 11:00): a complaint hot spot.
        let vending = grid(9);
        let stalls = [
            ((8, 0), (0.15, 0.2), "早市摆摊占道经营，人行道被堵死"),
            ((8, 30), (0.3, 0.7), "流动摊贩在路口卖水果"),
            ((9, 30), (0.5, 0.35), "商户出店经营占用人行道"),
            ((10, 0), (0.7, 0.8), "早点摊占道"),
            ((10, 30), (0.85, 0.15), "菜贩占道摆摊"),
            ((11, 0), (0.55, 0.9), "路边摊位占用盲道"),
        ];
        let stall = async |r: &mut Self, i: usize| -> anyhow::Result<()> {
            let ((h, m), (fy, fx), text) = stalls[i];
            r.at(h, m).await?;
            r.report(None, Filed::new(Channel::Snapshot, "resident-wang", "020501", text, vending.at(fy, fx))).await?;
            Ok(())
        };
        stall(self, 0).await?;
        // 08:10 a hotline call the operator could not place (其他): the plugin
        // classifies it as street vending.
        self.at(8, 10).await?;
        let call = "湖南路菜场门口有人摆摊卖菜，占了人行道，行人只能走机动车道，很危险";
        self.report(Some("hotline-vending"), Filed::hotline(("张先生", "138-0000-1111"), "020604", call, vending.at(0.4, 0.5)).address("湖南路菜场")).await?;
        // 08:20 a missing manhole cover; 08:30 the grid workers' patrol.
        self.at(8, 20).await?;
        self.report(None, Filed::new(Channel::Snapshot, "resident-zhou", "020405", "北京东路人行道井盖丢失，有行人险些踩空", grid(5).at(0.5, 0.5)).address("北京东路 41 号")).await?;
        stall(self, 1).await?;
        self.report(None, Filed::new(Channel::Patrol, "grid-worker-1", "020601", "楼上卫生间漏水，邻里争执，需调解", grid(1).at(0.6, 0.6)).address("长江路 20 号 2 栋")).await?;
        self.at(8, 35).await?;
        self.report(Some("hazard"), Filed::new(Channel::Patrol, "grid-worker-3", "020602", "小区车棚电动车飞线充电，存在火灾隐患", grid(12).at(0.3, 0.3)).address("湖南路 7 号院")).await?;

        // 09:00 the dispatcher's morning round; meanwhile the hazmat vehicle
        // sets out (its fixes are in the sensor streams).
        self.at(9, 0).await?;
        self.dispatch_round().await?;
        stall(self, 2).await?;
        stall(self, 3).await?;

        // 10:00 the garbage is cleared and its case closed.
        let garbage = self.case("garbage")?;
        let handler = match self.services.cases.view(&garbage).await?.and_then(|v| v.department).as_deref() {
            Some("chengguan") | None => "chengguan-handler".to_owned(),
            Some(other) => format!("{other}-handler"),
        };
        self.work_through(&garbage, &handler).await?;
        stall(self, 4).await?;

        // 10:50 the street cannot resolve the fire hazard and returns it:
        // 街道吹哨, the plugin calls a district department in.
        self.at(10, 50).await?;
        let hazard = self.case("hazard")?;
        let department = self.services.cases.view(&hazard).await?.and_then(|v| v.department).unwrap_or_else(|| "zongzhi".into());
        self.act(&format!("{department}-handler"), &hazard, Action::Return, "物业与业主多次协调无果，街道无法独立解决，需区级部门报到", None, None).await?;
        // 10:55 the command centre takes the call-in: the case goes to the
        // district department the plugin named, whose handler reports in (报到).
        self.at(10, 55).await?;
        let view = self.services.cases.view(&hazard).await?.context("the returned case")?;
        let call_in = view
            .suggestions
            .iter()
            .find(|s| s.outcome == crate::cases::suggest::SuggestionOutcome::Pending && s.level == "district");
        if let Some(s) = call_in {
            let handler = format!("{}-handler", s.department);
            self.act("dispatcher", &hazard, Action::Dispatch, "", None, Some(s.id.clone())).await?;
            self.act(&handler, &hazard, Action::Start, "", None, None).await?;
        }
        stall(self, 5).await?;

        // 15:00 the garbage at 中山路 88 号 is back: 假性整改. (The gas leak at
        // noon and the afternoon's rain and flooding come in on the way.)
        self.at(15, 0).await?;
        let call = "上午说清理了，下午中山路88号门口又堆满了垃圾，根本没处理干净";
        self.report(None, Filed::hotline(("李女士", "139 0000 2222"), "020101", call, garbage_at).address("中山路88号")).await?;
        // 16:00 the same caller as this morning, about the same stalls.
        self.at(16, 0).await?;
        let call = "湖南路菜场门口又有人摆摊卖菜，堵了人行道";
        self.report(None, Filed::hotline(("张先生", "13800001111"), "020501", call, vending.at(0.45, 0.55)).address("湖南路菜场")).await?;

        // 17:30 the dispatcher's afternoon round; 18:00 the patrol clears
        // some of the stalls and the rest are left for tomorrow.
        self.at(17, 30).await?;
        self.dispatch_round().await?;
        self.at(18, 0).await?;
        let rows = sqlx::query("SELECT id FROM cases WHERE category_code = '020501' AND status = 'dispatched' AND department = 'chengguan' ORDER BY created, id LIMIT 3")
            .fetch_all(self.services.db.pool())
            .await?;
        for r in rows {
            let id: String = r.try_get(0)?;
            self.work_through(&id, "chengguan-handler").await?;
        }

        // Past midnight: the overdue sweep and the day's tick, on which the
        // grid workers' overdue visits are found.
        self.at(24, 5).await?;
        crate::schedule::sweep_overdue(self.services).await?;
        self.settle().await?;
        ticks::publish_due(&self.services.db, &*self.services.bus, self.clock.now_ms()).await?;
        self.settle().await?;
        Ok(())
    }

    /// What the day came to, from the stores and the events collected.
    pub async fn summary(&self, events: &[Event]) -> anyhow::Result<Summary> {
        let db = self.services.db.pool();
        let (from, to) = (self.day.start, self.day.at(24, 30));
        let mut s = Summary { date: self.day.date.clone(), ..Summary::default() };
        for r in sqlx::query("SELECT channel, COUNT(*) FROM reports WHERE received >= $1 AND received < $2 GROUP BY channel ORDER BY channel")
            .bind(from)
            .bind(to)
            .fetch_all(db)
            .await?
        {
            s.reports.insert(r.try_get(0)?, r.try_get(1)?);
        }
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query(sql).bind(from).bind(to).fetch_one(db).await?.try_get(0)?;
            anyhow::Ok(n)
        };
        s.cases_opened = count("SELECT COUNT(*) FROM cases WHERE created >= $1 AND created < $2").await?;
        s.merged = s.reports.values().sum::<i64>() - s.cases_opened;
        s.dispatched = count("SELECT COUNT(DISTINCT case_id) FROM case_transitions WHERE action = 'dispatch' AND at >= $1 AND at < $2").await?;
        s.escalated = count("SELECT COUNT(DISTINCT case_id) FROM case_transitions WHERE action IN ('escalate', 'call-in') AND at >= $1 AND at < $2").await?
            + events.iter().filter(|e| e.topic == "zongzhi.call-in").count() as i64;
        s.closed = count("SELECT COUNT(*) FROM cases WHERE status = 'closed' AND created >= $1 AND created < $2").await?;
        s.open = count("SELECT COUNT(*) FROM cases WHERE status NOT IN ('closed', 'rejected', 'voided') AND created >= $1 AND created < $2").await?;
        s.overdue = events.iter().filter(|e| e.topic == "case.overdue").count() as i64;
        for r in sqlx::query(
            "SELECT category, COUNT(*), SUM(CASE WHEN LOWER(severity) IN ('severe', 'extreme') THEN 1 ELSE 0 END) FROM warnings \
             WHERE created >= $1 AND created < $2 GROUP BY category ORDER BY category",
        )
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?
        {
            s.warnings.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get::<Option<i64>, _>(2)?.unwrap_or(0)));
        }
        for r in sqlx::query("SELECT ticket, title FROM cases WHERE channel = 'warning' AND created >= $1 AND created < $2 ORDER BY created")
            .bind(from)
            .bind(to)
            .fetch_all(db)
            .await?
        {
            s.warning_cases.push((r.try_get::<Option<String>, _>(0)?.unwrap_or_default(), r.try_get(1)?));
        }
        for e in events {
            if e.topic.starts_with("case.") || e.topic.starts_with("warning.") {
                continue;
            }
            *s.plugin_events.entry(e.topic.clone()).or_default() += 1;
            let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
            match e.topic.as_str() {
                "yingji.response" => {
                    let n = payload["communities"].as_array().map_or(0, Vec::len);
                    s.flood_communities = s.flood_communities.max(n);
                }
                "hotline.false-rectification" => {
                    let case = payload["supervision_case"].as_str().unwrap_or_default();
                    if let Some(v) = self.services.cases.view(case).await? {
                        s.false_rectification.push((v.ticket.unwrap_or_default(), v.title));
                    }
                }
                _ => {}
            }
        }
        for r in sqlx::query(
            "SELECT COALESCE(department, '(unassigned)'), COUNT(*), SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) FROM cases \
             WHERE created >= $1 AND created < $2 GROUP BY 1 ORDER BY 1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?
        {
            s.departments.push((r.try_get(0)?, r.try_get(1)?, r.try_get::<Option<i64>, _>(2)?.unwrap_or(0), None));
        }
        let evaluation = self.services.evaluation.evaluate(from, to).await?;
        for d in &mut s.departments {
            d.3 = evaluation.departments.iter().find(|k| k.department == d.0).and_then(|k| k.kpis.closure_rate);
        }
        for p in self.runtime.plugins() {
            let stats = p.ctx.stats.view();
            s.plugins.push((p.name().to_owned(), stats.calls, stats.guest_errors + stats.failures.values().sum::<u64>()));
        }
        s.plugins.sort();
        Ok(s)
    }
}

/// Collect every event on the bus while the day is replayed.
pub fn collect(services: &Services) -> (mpsc::Receiver<Arc<Event>>, crate::bus::SubscriptionHandle) {
    let patterns = vec![yiwang_registry::TopicPattern::parse(">").expect("a pattern")];
    let sub = services.bus.subscribe("demo", patterns, 1_000_000);
    (sub.events, sub.handle)
}

/// Take what has been collected so far.
pub fn drain(events: &mut mpsc::Receiver<Arc<Event>>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push((*e).clone());
    }
    out
}

/// A text report of one replayed day, for `yiwang demo`.
pub fn describe(summary: &Summary, seeded: &city::Layout) -> String {
    let mut out = summary.to_string();
    let _ = write!(
        out,
        "\n  city         {} streets, {} communities, {} grid cells; demo accounts (dispatcher, supervisor, leader, checker, chengguan-handler, grid-worker-1 … 8, resident-wang, …) share the password `{}`",
        seeded.streets.len(),
        seeded.communities.len(),
        seeded.grids.len(),
        city::PASSWORD
    );
    out
}
