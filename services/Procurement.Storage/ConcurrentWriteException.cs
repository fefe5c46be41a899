namespace Procurement.Storage;

/// <summary>
/// A row changed between the read and the write of one unit of work. Cannot happen on SQLite's
/// single writer; on a server database it means a lock was not taken, and the unit is rolled back.
/// </summary>
public sealed class ConcurrentWriteException(string resourceType, string id)
    : Exception($"{resourceType} '{id}' was changed by a concurrent writer.");
