//! Jobs at the SQL boundary: the launcher (one per cluster) and the job
//! workers (one per database with the extension). The job catalog, schedule,
//! runs, retries and dispatch are SQL (sql/jobs.sql).

pub mod launcher;
pub mod worker;
