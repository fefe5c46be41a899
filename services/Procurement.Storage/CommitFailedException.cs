namespace Procurement.Storage;

/// <summary>
/// SQLite could not begin or commit the group a unit of work ran in (a full disk, an I/O error). The
/// unit is not acknowledged, this process rolled the group back and forgot what its writer kept in
/// memory about it. Retrying with the same request id is safe: the request is applied once, or, if a
/// failed flush left the group on disk and a crash recovered it, its first response is replayed.
/// </summary>
public sealed class CommitFailedException(Exception cause)
    : Exception($"The database could not commit the write, which is not acknowledged: {cause.Message}", cause);
