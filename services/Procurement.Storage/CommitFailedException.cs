namespace Procurement.Storage;

/// <summary>
/// The database did not commit the transaction a unit of work ran in (SQLite: a full disk or an I/O
/// error at the group's commit, another unit's failure that made SQLite roll the group back, or an
/// error that made the writer abandon the group; PostgreSQL: a check deferred to commit, or a
/// connection cut during it).
/// The unit is not acknowledged; the SQLite writer rolled its group back and forgot what it kept in
/// memory about it. Retrying with the same request id is safe: the request is applied once, or, where
/// the commit happened after all (a connection cut after PostgreSQL committed, or a group a crash
/// recovered after a failed flush), its first response is replayed.
/// </summary>
public sealed class CommitFailedException(Exception cause)
    : Exception($"The database did not commit the write, which is not acknowledged: {cause.Message}", cause);
