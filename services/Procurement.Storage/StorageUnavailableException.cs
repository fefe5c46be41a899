namespace Procurement.Storage;

/// <summary>
/// PostgreSQL could not be reached, or failed the work for a passing reason (a refused or dropped
/// connection, a timeout, a server shutting down or out of connections, a unit that lost its race
/// every time it ran), before the unit's commit was asked for. Such a transaction never commits, so
/// nothing of the read or unit was written, and a retry with the same request id is safe.
/// </summary>
public sealed class StorageUnavailableException(Exception cause)
    : Exception($"The database is unavailable; nothing was written: {cause.Message}", cause);
