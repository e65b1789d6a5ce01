//! The launcher: one background worker per cluster that starts a job worker
//! (src/worker.rs) for every database where pg_kpi is installed, as
//! TimescaleDB does, within `kpi.max_workers`; `kpi.database`, if set, only
//! restricts the list.
//!
//! The launcher connects to no database: every `LOOK_SECONDS`, or as soon as
//! its latch is set, it reads `pg_database` and starts a dynamic worker for
//! each database it has not ruled out. A worker that finds no extension marks
//! its database `NO_EXTENSION` and exits; `CREATE EXTENSION` marks it again at
//! commit and wakes the launcher. A worker whose extension is dropped exits the
//! same way. State shared between the launcher, the workers and the backends
//! lives in `REGISTRY` (shared memory, one lightweight lock):
//!
//! - `jobs.active`: a job worker is registered or running for the database
//!   (the launcher sets it, the worker's exit callback clears it), so a
//!   restarted launcher never starts a second worker;
//! - `held`: a backend is about to DROP, rename or copy the database (or move
//!   its tablespace) and needs every other connection gone; the
//!   ProcessUtility hook sets it, stops the worker, and clears it afterwards;
//! - `wake`: bumped by `CREATE EXTENSION`, so a worker that looked for the
//!   extension just before the commit does not rule the database out;
//! - `delivery` and `delivery_wanted`: the database's delivery worker
//!   (src/delivery/worker.rs), wanted while an enabled alert receiver exists: a commit that adds a
//!   receiver or queues deliveries sets its latch, or asks the launcher to
//!   start it; the job worker asks too when it finds receivers (after a
//!   restart). It exits when the last receiver is gone.
//!
//! Nothing runs while the server is in recovery (the launcher starts once
//! recovery has finished).

use crate::pg::guc::worker_role;
use crate::pg::guc::{DATABASE, ENABLED, MAX_WORKERS};
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::lwlock::PgLwLock;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most databases the registry tracks (with or without the extension).
const MAX_DATABASES: usize = 4096;
/// Seconds between the launcher's looks at pg_database when nothing wakes it.
const LOOK_SECONDS: u64 = 10;
/// Seconds the postmaster waits before restarting a launcher that exited.
const RESTART_SECONDS: u64 = 5;
/// How long a DROP/ALTER DATABASE waits for the database's worker to exit.
const HOLD_WAIT_MS: u64 = 10_000;

const UNKNOWN: u8 = 0;
const INSTALLED: u8 = 1;
const NO_EXTENSION: u8 = 2;

#[derive(Copy, Clone, Default)]
#[repr(C)]
struct DbSlot {
    oid: u32,
    state: u8,
    /// pid of the backend holding the database for DROP/ALTER/CREATE DATABASE (0: none)
    held_by: i32,
    /// the job worker
    jobs: Worker,
    wake: u32,
    /// the database has a receiver: the launcher keeps a delivery worker running
    delivery_wanted: bool,
    /// the delivery worker
    delivery: Worker,
}

/// One of a database's workers, as the registry knows it.
#[derive(Copy, Clone, Default)]
#[repr(C)]
struct Worker {
    /// registered or running (the launcher sets it, the worker's exit callback clears it)
    active: bool,
    pid: i32,
    /// the worker's latch (in its PGPROC), 0 while none runs
    latch: usize,
}

/// Which of a database's workers.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    Jobs = 0,
    Delivery = 1,
}

impl DbSlot {
    fn worker(&mut self, kind: Kind) -> &mut Worker {
        match kind {
            Kind::Jobs => &mut self.jobs,
            Kind::Delivery => &mut self.delivery,
        }
    }
}

#[derive(Copy, Clone)]
#[repr(C)]
pub struct Registry {
    /// The launcher's latch (a pointer into the PGPROC array, the same in
    /// every process), 0 while no launcher runs.
    launcher_latch: usize,
    used: usize,
    dbs: [DbSlot; MAX_DATABASES],
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            launcher_latch: 0,
            used: 0,
            dbs: [DbSlot::default(); MAX_DATABASES],
        }
    }
}

impl Registry {
    fn find(&mut self, oid: u32) -> Option<&mut DbSlot> {
        self.dbs[..self.used].iter_mut().find(|s| s.oid == oid)
    }

    fn find_or_add(&mut self, oid: u32) -> Option<&mut DbSlot> {
        if let Some(i) = self.dbs[..self.used].iter().position(|s| s.oid == oid) {
            return Some(&mut self.dbs[i]);
        }
        let i = if self.used < MAX_DATABASES {
            self.used += 1;
            self.used - 1
        } else {
            // full: forget a database known to lack the extension (it is looked at again)
            self.dbs.iter().position(|s| {
                s.state == NO_EXTENSION && !s.jobs.active && !s.delivery.active && s.held_by == 0
            })?
        };
        self.dbs[i] = DbSlot {
            oid,
            ..DbSlot::default()
        };
        Some(&mut self.dbs[i])
    }

    /// Forgets databases that no longer exist (and have nothing running).
    fn retain(&mut self, alive: &HashSet<u32>) {
        let mut kept = 0;
        for i in 0..self.used {
            let s = self.dbs[i];
            if alive.contains(&s.oid) || s.jobs.active || s.delivery.active || s.held_by != 0 {
                self.dbs[kept] = s;
                kept += 1;
            }
        }
        self.used = kept;
    }

    fn wake_launcher(&self) {
        if self.launcher_latch != 0 {
            // SAFETY: the latch lives in shared memory (the launcher's PGPROC) for the life of the cluster
            unsafe { pg_sys::SetLatch(self.launcher_latch as *mut pg_sys::Latch) };
        }
    }
}

// SAFETY: Registry is plain old data (integers and fixed arrays), valid when zeroed
unsafe impl PGRXSharedMemory for Registry {}

static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"pg_kpi_launcher") };

/// True in processes forked from a postmaster that preloaded pg_kpi (the
/// registry exists and a launcher runs).
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Called from `_PG_init` while preloading: shared memory, the launcher and
/// the utility hook.
pub fn init_preloaded() {
    pgrx::pg_shmem_init!(REGISTRY);
    PRELOADED.store(true, Ordering::Relaxed);
    BackgroundWorkerBuilder::new("pg_kpi launcher")
        .set_type("pg_kpi launcher")
        .set_library("pg_kpi")
        .set_function("pg_kpi_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(RESTART_SECONDS)))
        .load();
    // SAFETY: _PG_init runs once in the postmaster, before any backend exists
    unsafe {
        PREV_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(kpi_process_utility);
    }
}

fn names_filter() -> Vec<String> {
    DATABASE
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

struct Database {
    oid: u32,
    name: String,
}

/// The databases a worker may connect to: not templates, connections
/// allowed, not left invalid by an interrupted DROP DATABASE. Also resolves
/// the worker role (Err when it does not exist).
fn read_catalog(role: Option<&str>) -> (Vec<Database>, Result<u32, String>) {
    let mut out = Vec::new();
    // SAFETY: a plain catalog heap scan in a transaction of its own, as the
    // autovacuum launcher does; tuples are read before the scan ends
    let role_oid = unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tup = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tup.is_null() {
                break;
            }
            let data = (*tup).t_data;
            let form = (data as *const u8).add(usize::from((*data).t_hoff))
                as *const pg_sys::FormData_pg_database;
            // datconnlimit -2 marks a database a failed DROP DATABASE left invalid
            if (*form).datistemplate || !(*form).datallowconn || (*form).datconnlimit == -2 {
                continue;
            }
            let name = CStr::from_ptr((*form).datname.data.as_ptr())
                .to_string_lossy()
                .into_owned();
            out.push(Database {
                oid: (*form).oid.to_u32(),
                name,
            });
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        let role_oid = match role {
            None => Ok(0),
            Some(r) => {
                let c = CString::new(r).unwrap_or_default();
                let oid = pg_sys::get_role_oid(c.as_ptr(), true);
                if oid == pg_sys::InvalidOid {
                    Err(r.to_string())
                } else {
                    Ok(oid.to_u32())
                }
            }
        };
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
        role_oid
    };
    (out, role_oid)
}

fn start_worker(db: &Database, role_oid: u32) -> Option<DynamicBackgroundWorker> {
    // SAFETY: reading this process's pid
    let me = unsafe { pg_sys::MyProcPid };
    BackgroundWorkerBuilder::new(&format!("pg_kpi worker for database {}", db.name))
        .set_type("pg_kpi worker")
        .set_library("pg_kpi")
        .set_function("pg_kpi_worker_main")
        .set_argument(Some(pg_sys::Datum::from(db.oid)))
        .set_extra(&format!("{role_oid} {}", db.name))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(me)
        .load_dynamic()
        .ok()
}

fn start_delivery_worker(db: &Database, role_oid: u32) -> Option<DynamicBackgroundWorker> {
    // SAFETY: reading this process's pid
    let me = unsafe { pg_sys::MyProcPid };
    BackgroundWorkerBuilder::new(&format!("pg_kpi delivery for database {}", db.name))
        .set_type("pg_kpi delivery")
        .set_library("pg_kpi")
        .set_function("pg_kpi_delivery_main")
        .set_argument(Some(pg_sys::Datum::from(db.oid)))
        .set_extra(&format!("{role_oid} {}", db.name))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(me)
        .load_dynamic()
        .ok()
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_kpi_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    {
        let mut r = REGISTRY.exclusive();
        // SAFETY: MyLatch points into this process's PGPROC, in shared memory
        r.launcher_latch = unsafe { pg_sys::MyLatch } as usize;
    }
    // SAFETY: an exit callback without argument; however the launcher ends, its
    // PGPROC (and latch) may go to another process
    unsafe { pg_sys::before_shmem_exit(Some(launcher_exit), pg_sys::Datum::from(0)) };
    log!("pg_kpi launcher started");
    let mut handles: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    let mut delivery_handles: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    // when each database's delivery worker was last started (a worker that
    // keeps exiting is started again at most every RESTART_SECONDS)
    let mut delivery_started: HashMap<u32, std::time::Instant> = HashMap::new();
    // what was already reported, so the log says each thing once
    let mut told_missing: HashSet<String> = HashSet::new();
    let mut told_full: HashSet<u32> = HashSet::new();
    let mut told_role = false;
    loop {
        if !ENABLED.get() {
            // workers stay idle; nothing new starts
        } else {
            let role = worker_role();
            let (dbs, role_oid) = read_catalog(role.as_deref());
            let filter = names_filter();
            for name in &filter {
                if !dbs.iter().any(|d| &d.name == name) && told_missing.insert(name.clone()) {
                    pgrx::warning!(
                        "pg_kpi launcher: kpi.database names \"{name}\", which is not a database a worker can connect to"
                    );
                }
            }
            match role_oid {
                Err(r) => {
                    if !told_role {
                        pgrx::warning!(
                            "pg_kpi launcher: kpi.worker_role \"{r}\" does not exist; no job worker is started"
                        );
                        told_role = true;
                    }
                }
                Ok(role_oid) => {
                    told_role = false;
                    let alive: HashSet<u32> = dbs.iter().map(|d| d.oid).collect();
                    // keep the handles of workers not yet started or running
                    handles.retain(|oid, h| {
                        alive.contains(oid)
                            && matches!(h.pid(), Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted))
                    });
                    delivery_handles.retain(|oid, h| {
                        alive.contains(oid)
                            && matches!(h.pid(), Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted))
                    });
                    let max = usize::try_from(MAX_WORKERS.get()).unwrap_or(0);
                    let mut r = REGISTRY.exclusive();
                    for i in 0..r.used {
                        let s = r.dbs[i];
                        // a worker that failed before it started never cleared its flag
                        if s.jobs.active && s.jobs.pid == 0 && !handles.contains_key(&s.oid) {
                            r.dbs[i].jobs.active = false;
                        }
                        if s.delivery.active
                            && s.delivery.pid == 0
                            && !delivery_handles.contains_key(&s.oid)
                        {
                            r.dbs[i].delivery.active = false;
                        }
                        // a backend that held the database and died without letting go
                        // SAFETY: kill(pid, 0) only tests whether the process exists
                        if s.held_by != 0 && unsafe { libc::kill(s.held_by, 0) } != 0 {
                            r.dbs[i].held_by = 0;
                        }
                    }
                    r.retain(&alive);
                    let mut running = r.dbs[..r.used].iter().filter(|s| s.jobs.active).count();
                    for db in &dbs {
                        if !filter.is_empty() && !filter.contains(&db.name) {
                            continue;
                        }
                        let Some(slot) = r.find_or_add(db.oid) else {
                            if told_full.insert(db.oid) {
                                pgrx::warning!(
                                    "pg_kpi launcher: more than {MAX_DATABASES} databases; \"{}\" is not served",
                                    db.name
                                );
                            }
                            continue;
                        };
                        if slot.delivery_wanted
                            && !slot.delivery.active
                            && slot.held_by == 0
                            && slot.state != NO_EXTENSION
                            && delivery_started
                                .get(&db.oid)
                                .is_none_or(|t| t.elapsed().as_secs() >= RESTART_SECONDS)
                        {
                            match start_delivery_worker(db, role_oid) {
                                Some(h) => {
                                    slot.delivery.active = true;
                                    delivery_started.insert(db.oid, std::time::Instant::now());
                                    delivery_handles.insert(db.oid, h);
                                }
                                None => {
                                    if told_full.insert(db.oid) {
                                        pgrx::warning!(
                                            "pg_kpi launcher: could not start the delivery worker for database \"{}\"; raise max_worker_processes",
                                            db.name
                                        );
                                    }
                                }
                            }
                        }
                        if slot.jobs.active || slot.held_by != 0 || slot.state == NO_EXTENSION {
                            continue;
                        }
                        if running >= max {
                            if told_full.insert(db.oid) {
                                pgrx::warning!(
                                    "pg_kpi launcher: kpi.max_workers ({max}) workers are running; database \"{}\" gets none",
                                    db.name
                                );
                            }
                            continue;
                        }
                        match start_worker(db, role_oid) {
                            Some(h) => {
                                slot.jobs.active = true;
                                running += 1;
                                told_full.remove(&db.oid);
                                handles.insert(db.oid, h);
                            }
                            None => {
                                if told_full.insert(db.oid) {
                                    pgrx::warning!(
                                        "pg_kpi launcher: could not start a worker for database \"{}\"",
                                        db.name
                                    );
                                }
                                pgrx::log!("pg_kpi launcher: raise max_worker_processes");
                                break;
                            }
                        }
                    }
                }
            }
        }
        let look = {
            let r = REGISTRY.share();
            let throttled = r.dbs[..r.used]
                .iter()
                .any(|s| s.delivery_wanted && !s.delivery.active && s.held_by == 0);
            if throttled {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(LOOK_SECONDS)
            }
        };
        if !BackgroundWorker::wait_latch(Some(look)) {
            // SIGTERM or postmaster death: exit non-zero, so the postmaster
            // starts the launcher again unless it is shutting down; the
            // workers keep running and the next launcher finds them active
            // SAFETY: ending this background worker process; PostgreSQL runs the exit callbacks
            unsafe { pg_sys::proc_exit(1) };
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration in the worker's main loop, outside any transaction
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            told_missing.clear();
            told_full.clear();
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn launcher_exit(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    REGISTRY.exclusive().launcher_latch = 0;
}

// ---- the worker's side ----------------------------------------------------

/// Called by a worker before it connects: claims its place in its
/// database's slot. Returns false when it must not run (the database is
/// held, or another worker of the kind serves it).
fn claim(db_oid: u32, kind: Kind) -> bool {
    let mut r = REGISTRY.exclusive();
    let Some(slot) = r.find_or_add(db_oid) else {
        return false;
    };
    // SAFETY: reading this process's pid and latch
    let (me, latch) = unsafe { (pg_sys::MyProcPid, pg_sys::MyLatch as usize) };
    if slot.worker(kind).pid != 0 && slot.worker(kind).pid != me {
        return false; // another worker serves this database
    }
    if slot.held_by != 0 {
        slot.worker(kind).active = false;
        r.wake_launcher();
        return false;
    }
    *slot.worker(kind) = Worker {
        active: true,
        pid: me,
        latch,
    };
    if kind == Kind::Jobs {
        slot.state = UNKNOWN;
    }
    drop(r);
    // the exit callback's argument: the database and the kind
    let arg = u64::from(db_oid) | ((kind as u64) << 32);
    // SAFETY: registering an exit callback with a plain integer argument
    unsafe { pg_sys::before_shmem_exit(Some(worker_exit), pg_sys::Datum::from(arg)) };
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn worker_exit(_code: std::ffi::c_int, arg: pg_sys::Datum) {
    let arg = arg.value() as u64;
    let kind = if arg >> 32 == Kind::Delivery as u64 {
        Kind::Delivery
    } else {
        Kind::Jobs
    };
    let mut r = REGISTRY.exclusive();
    if let Some(s) = r.find(arg as u32) {
        *s.worker(kind) = Worker::default();
    }
    r.wake_launcher();
}

/// Called by a job worker before it connects (see `claim`).
pub fn worker_claim(db_oid: u32) -> bool {
    claim(db_oid, Kind::Jobs)
}

/// Called by a delivery worker before it connects (see `claim`).
pub fn delivery_claim(db_oid: u32) -> bool {
    claim(db_oid, Kind::Delivery)
}

/// The delivery worker found no enabled receiver and is leaving: no other is
/// started until a receiver is added.
pub fn delivery_not_wanted(db_oid: u32) {
    if let Some(s) = REGISTRY.exclusive().find(db_oid) {
        s.delivery_wanted = false;
    }
}

/// The database has deliveries or receivers: wakes its delivery worker, or
/// asks the launcher to start one. Does nothing unless pg_kpi is preloaded.
fn want_delivery(db_oid: u32) {
    if !PRELOADED.load(Ordering::Relaxed) {
        return;
    }
    let mut r = REGISTRY.exclusive();
    let Some(s) = r.find_or_add(db_oid) else {
        return;
    };
    s.delivery_wanted = true;
    if s.delivery.latch != 0 {
        // SAFETY: the latch lives in the delivery worker's PGPROC, in shared memory; its exit callback clears it
        unsafe { pg_sys::SetLatch(s.delivery.latch as *mut pg_sys::Latch) };
    } else if !s.delivery.active {
        r.wake_launcher();
    }
}

/// Called by the job worker, which found an enabled receiver: makes sure a
/// delivery worker runs (after a restart, or one that exited).
pub fn ensure_delivery(db_oid: u32) {
    let mut r = REGISTRY.exclusive();
    let Some(s) = r.find_or_add(db_oid) else {
        return;
    };
    if !s.delivery.active {
        s.delivery_wanted = true;
        r.wake_launcher();
    }
}

/// The wake generation of a database, read before looking for the extension.
pub fn wake_generation(db_oid: u32) -> u32 {
    REGISTRY
        .exclusive()
        .find(db_oid)
        .map(|s| s.wake)
        .unwrap_or(0)
}

/// The worker found the extension (`installed`) or not. Without it the
/// database is ruled out until CREATE EXTENSION, unless a CREATE EXTENSION
/// committed since `generation` was read.
pub fn worker_found(db_oid: u32, installed: bool, generation: u32) {
    let mut r = REGISTRY.exclusive();
    if let Some(s) = r.find(db_oid) {
        if installed {
            s.state = INSTALLED;
        } else if s.wake == generation {
            s.state = NO_EXTENSION;
        }
    }
}

// ---- at commit: CREATE EXTENSION, new deliveries ----------------------------

thread_local! {
    /// CREATE EXTENSION ran in this transaction: the launcher looks at once
    static WAKE_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    /// deliveries were queued or receivers changed: the delivery worker wakes
    static DELIVERY_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

fn register_commit_callback() {
    if !CALLBACK_REGISTERED.replace(true) {
        // SAFETY: registering a transaction callback with no argument; it lives as long as the backend
        unsafe { pg_sys::RegisterXactCallback(Some(at_xact_end), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn at_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            // SAFETY: reading this backend's database
            let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
            if WAKE_AT_COMMIT.replace(false) {
                let mut r = REGISTRY.exclusive();
                if let Some(s) = r.find_or_add(db) {
                    s.wake = s.wake.wrapping_add(1);
                    if s.state == NO_EXTENSION {
                        s.state = UNKNOWN;
                    }
                }
                r.wake_launcher();
            }
            if DELIVERY_AT_COMMIT.replace(false) {
                want_delivery(db);
            }
        }
        // a prepared CREATE EXTENSION commits in another session, which cannot
        // tell: that database's worker starts at the launcher's next look only
        // if the database was not ruled out yet (likewise the delivery worker
        // at the job worker's next look)
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            WAKE_AT_COMMIT.set(false);
            DELIVERY_AT_COMMIT.set(false);
        }
        _ => {}
    }
}

/// Wakes this database's delivery worker (or has the launcher start one)
/// when the current transaction commits. Nothing without preloading.
pub fn want_delivery_at_commit() {
    if PRELOADED.load(Ordering::Relaxed) {
        register_commit_callback();
        DELIVERY_AT_COMMIT.set(true);
    }
}

/// Run by the extension script: once the CREATE EXTENSION commits, the
/// launcher starts this database's worker. Without preloading there is no
/// worker, and a NOTICE says how jobs run instead.
#[pg_extern(
    volatile,
    parallel_unsafe,
    schema = "kpi_internal",
    name = "start_worker"
)]
fn _start_worker() -> bool {
    if !PRELOADED.load(Ordering::Relaxed) {
        pgrx::notice!(
            "pg_kpi is not in shared_preload_libraries, so no background worker runs its jobs (rollups, retention, partitions, alert resolution)"
        );
        // a second NOTICE line as a hint, since extension scripts cannot attach one
        pgrx::notice!(
            "run SELECT kpi.run_due_jobs() every minute (for example from pg_cron), or add pg_kpi to shared_preload_libraries and restart"
        );
        return false;
    }
    let busy = {
        let r = REGISTRY.share();
        r.dbs[..r.used].iter().filter(|s| s.jobs.active).count()
    };
    let max = usize::try_from(MAX_WORKERS.get()).unwrap_or(0);
    if busy >= max {
        pgrx::notice!(
            "all kpi.max_workers ({max}) pg_kpi job workers are busy in other databases, so this database gets none for now; raise kpi.max_workers (and max_worker_processes), or run SELECT kpi.run_due_jobs() from a scheduler"
        );
    }
    register_commit_callback();
    WAKE_AT_COMMIT.set(true);
    true
}

// ---- DROP / RENAME / copy a database ---------------------------------------

static mut PREV_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// The database a utility statement needs to have no other connection.
unsafe fn exclusive_database(node: *mut pg_sys::Node) -> Option<CString> {
    unsafe fn option(options: *mut pg_sys::List, name: &str) -> Option<*mut pg_sys::DefElem> {
        if options.is_null() {
            return None;
        }
        for i in 0..(*options).length as usize {
            let def = (*(*options).elements.add(i)).ptr_value as *mut pg_sys::DefElem;
            if !def.is_null() && CStr::from_ptr((*def).defname).to_bytes() == name.as_bytes() {
                return Some(def);
            }
        }
        None
    }
    let name: *const std::ffi::c_char = if pgrx::is_a(node, pg_sys::NodeTag::T_DropdbStmt) {
        (*(node as *mut pg_sys::DropdbStmt)).dbname
    } else if pgrx::is_a(node, pg_sys::NodeTag::T_RenameStmt) {
        let s = node as *mut pg_sys::RenameStmt;
        if (*s).renameType != pg_sys::ObjectType::OBJECT_DATABASE {
            return None;
        }
        (*s).subname
    } else if pgrx::is_a(node, pg_sys::NodeTag::T_AlterDatabaseStmt) {
        let s = node as *mut pg_sys::AlterDatabaseStmt;
        option((*s).options, "tablespace")?;
        (*s).dbname
    } else if pgrx::is_a(node, pg_sys::NodeTag::T_CreatedbStmt) {
        let s = node as *mut pg_sys::CreatedbStmt;
        let def = option((*s).options, "template")?;
        if (*def).arg.is_null() {
            return None; // TEMPLATE DEFAULT
        }
        pg_sys::defGetString(def)
    } else {
        return None;
    };
    (!name.is_null()).then(|| CStr::from_ptr(name).to_owned())
}

/// Whether the current user may drop, rename or copy the database: only then
/// does the hook stop its worker (PostgreSQL checks again and raises the error).
fn may_hold(oid: pg_sys::Oid) -> bool {
    // SAFETY: catalog lookups in the current transaction
    unsafe {
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
        {
            pg_sys::pg_database_ownercheck(oid, pg_sys::GetUserId())
        }
        #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
        {
            pg_sys::object_ownercheck(pg_sys::DatabaseRelationId, oid, pg_sys::GetUserId())
        }
    }
}

thread_local! {
    static RELEASE_AT_EXIT: Cell<bool> = const { Cell::new(false) };
}

/// Stops the database's workers and keeps the launcher from starting them until
/// `release`; a backend that dies first lets go in its exit callback (and the
/// launcher clears holds of processes that are gone).
fn hold(oid: u32) {
    // SAFETY: reading this process's pid
    let me = unsafe { pg_sys::MyProcPid };
    if !RELEASE_AT_EXIT.replace(true) {
        // SAFETY: an exit callback without argument
        unsafe { pg_sys::before_shmem_exit(Some(release_all), pg_sys::Datum::from(0)) };
    }
    let pid = {
        let mut r = REGISTRY.exclusive();
        let Some(s) = r.find_or_add(oid) else {
            return;
        };
        if s.held_by == 0 {
            s.held_by = me;
        }
        [s.jobs.pid, s.delivery.pid]
    };
    for pid in pid.into_iter().filter(|p| *p != 0) {
        // SAFETY: signalling a process of this cluster, as pg_terminate_backend does
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let mut waited = 0;
    while waited < HOLD_WAIT_MS {
        let busy = REGISTRY
            .exclusive()
            .find(oid)
            .map(|s| s.jobs.active || s.delivery.active)
            .unwrap_or(false);
        if !busy {
            return;
        }
        // SAFETY: sleeping 10 ms, then honouring cancel requests
        unsafe { pg_sys::pg_usleep(10_000) };
        pgrx::check_for_interrupts!();
        waited += 10;
    }
}

fn release(oid: u32) {
    // SAFETY: reading this process's pid
    let me = unsafe { pg_sys::MyProcPid };
    let mut r = REGISTRY.exclusive();
    if let Some(s) = r.find(oid) {
        if s.held_by == me {
            s.held_by = 0;
        }
    }
    r.wake_launcher();
}

#[pg_guard]
unsafe extern "C-unwind" fn release_all(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    // SAFETY: reading this process's pid
    let me = unsafe { pg_sys::MyProcPid };
    let mut r = REGISTRY.exclusive();
    let used = r.used;
    for s in &mut r.dbs[..used] {
        if s.held_by == me {
            s.held_by = 0;
        }
    }
    r.wake_launcher();
}

#[allow(clippy::too_many_arguments)]
#[pg_guard]
unsafe extern "C-unwind" fn kpi_process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: passes the hook's own arguments on unchanged
    let run = || unsafe {
        match PREV_UTILITY {
            // another extension's hook: its ERRORs must unwind through Rust properly
            Some(prev) => pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                prev(
                    pstmt,
                    query_string,
                    read_only_tree,
                    context,
                    params,
                    query_env,
                    dest,
                    qc,
                )
            }),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    };
    let target = exclusive_database((*pstmt).utilityStmt)
        .map(|name| pg_sys::get_database_oid(name.as_ptr(), true))
        .filter(|oid| *oid != pg_sys::InvalidOid && may_hold(*oid))
        .map(|oid| oid.to_u32());
    let Some(oid) = target else {
        run();
        return;
    };
    PgTryBuilder::new(|| {
        hold(oid);
        run()
    })
    .finally(|| release(oid))
    .execute();
}

/// The launcher's view of the cluster's databases, for `kpi.worker_status()`.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted)]
fn worker_status() -> TableIterator<
    'static,
    (
        name!(database, Option<String>),
        name!(pid, Option<i32>),
        name!(state, &'static str),
        name!(delivery_pid, Option<i32>),
    ),
> {
    let mut rows = Vec::new();
    if PRELOADED.load(Ordering::Relaxed) {
        let r = REGISTRY.share();
        for s in &r.dbs[..r.used] {
            let state = if s.held_by != 0 {
                "held"
            } else {
                match (s.jobs.active, s.state) {
                    (true, INSTALLED) => "running",
                    (true, _) => "starting",
                    (false, NO_EXTENSION) => "no extension",
                    (false, _) => "waiting",
                }
            };
            rows.push((
                s.oid,
                (s.jobs.pid != 0).then_some(s.jobs.pid),
                state,
                (s.delivery.pid != 0).then_some(s.delivery.pid),
            ));
        }
    }
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(oid, pid, state, delivery)| {
            // SAFETY: a syscache lookup in a transaction; NULL when the database is gone
            let name = unsafe {
                let p = pg_sys::get_database_name(pg_sys::Oid::from(oid));
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            };
            (name, pid, state, delivery)
        })
        .collect();
    TableIterator::new(rows)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The test server does not preload pg_kpi: CREATE EXTENSION says so and no
    /// worker is asked for; the status lists nothing.
    #[pg_test]
    fn without_preloading_no_worker_is_asked_for() {
        assert_eq!(
            Spi::get_one::<bool>("SELECT kpi_internal.start_worker()").unwrap(),
            Some(false)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM kpi.worker_status()").unwrap(),
            Some(0)
        );
    }
}
