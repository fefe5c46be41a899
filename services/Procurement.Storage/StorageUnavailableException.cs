namespace Procurement.Storage;

/// <summary>
/// The database could not take the work, before the unit's commit was asked for: on SQLite the file
/// could not take a unit's writes (a full disk, an I/O error); on PostgreSQL the server could not be
/// reached or failed for a passing reason (a refused or dropped connection, a timeout, a shutdown, no
/// free connections, a serialization failure, deadlock or row changed under it on every attempt of the
/// unit). Nothing of the read or unit was written, and a retry with the same request id is safe.
/// </summary>
public sealed class StorageUnavailableException(Exception cause)
    : Exception($"The database is unavailable; nothing was written: {cause.Message}", cause);
