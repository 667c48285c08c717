//! A single SQLite writer thread with group commit.
//!
//! SQLite allows one writer at a time; rather than have many threads queue on
//! a lock, writes are sent to one thread that drains what is queued into one
//! transaction. Each write runs in its own savepoint, so one failing write is
//! rolled back alone, and each caller hears back only after the commit.

use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

/// How many queued writes one transaction takes at most.
const GROUP_COMMIT_MAX: usize = 64;

trait Job: Send {
    /// Run inside the open transaction, in a savepoint of its own.
    fn run(&mut self, conn: &mut Connection);
    /// Tell the caller, now that the transaction's fate is known.
    fn finish(self: Box<Self>, commit: &Result<(), Arc<rusqlite::Error>>);
}

struct Write<T, F> {
    f: Option<F>,
    result: Option<rusqlite::Result<T>>,
    reply: Option<oneshot::Sender<Result<T, Arc<rusqlite::Error>>>>,
}

impl<T: Send, F: FnOnce(&Connection) -> rusqlite::Result<T> + Send> Job for Write<T, F> {
    fn run(&mut self, conn: &mut Connection) {
        let f = self.f.take().expect("a write runs once");
        self.result = Some((|| {
            let sp = conn.savepoint()?;
            let out = f(&sp)?;
            sp.commit()?;
            Ok(out)
        })());
    }

    fn finish(mut self: Box<Self>, commit: &Result<(), Arc<rusqlite::Error>>) {
        let outcome = match (self.result.take().expect("run before finish"), commit) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(Arc::new(e)),
            (Ok(_), Err(e)) => Err(e.clone()),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have gone away: nothing to tell.
            let _ = reply.send(outcome);
        }
    }
}

/// Work done in each transaction after its writes, before the commit.
pub(crate) type BeforeCommit = fn(&Connection) -> rusqlite::Result<()>;

/// Handle to the writer thread.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    pub(crate) fn start(conn: Connection, name: &str) -> std::io::Result<Self> {
        Self::start_with(conn, name, |_| Ok(()))
    }

    /// A writer that runs `before_commit` at the end of each transaction, after
    /// its writes: what it does commits with them, and its failure fails them all.
    pub(crate) fn start_with(conn: Connection, name: &str, before_commit: BeforeCommit) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || run(conn, rx, before_commit))?;
        Ok(Self { jobs })
    }

    /// Run `f` on the writer, atomically, and wait for it to be committed.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, WriterError> {
        let (reply, wait) = oneshot::channel();
        self.jobs
            .send(Box::new(Write { f: Some(f), result: None, reply: Some(reply) }))
            .map_err(|_| WriterError::Stopped)?;
        wait.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::Sqlite)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WriterError {
    #[error("the database writer has stopped")]
    Stopped,
    #[error(transparent)]
    Sqlite(Arc<rusqlite::Error>),
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, before_commit: BeforeCommit) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let commit = (|| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for job in &mut batch {
                job.run(&mut conn);
            }
            before_commit(&conn)?;
            conn.execute_batch("COMMIT")
        })()
        .map_err(Arc::new);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch {
            job.finish(&commit);
        }
    }
}
